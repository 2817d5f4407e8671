"""orchestrator room."""
