"""knowledge room."""
