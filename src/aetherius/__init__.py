"""Aetherius: a read-only Kubernetes diagnostics agent."""

__version__ = "0.1.0"
