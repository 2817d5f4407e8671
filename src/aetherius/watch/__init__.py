"""watch room."""
