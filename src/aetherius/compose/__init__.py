"""Process entry points that compose rooms: ``aetherius run`` (watcher, orchestrator, API and
dashboard in one process) and ``aetherius demo`` (the same over the simulated cluster).

They sit above every room, so no room imports another room to its right, and the simulated
cluster stays out of the product's roles (only the demo uses it).
"""
