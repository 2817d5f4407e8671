"""diagnosis room."""
