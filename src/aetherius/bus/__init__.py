"""bus room."""
