"""Many clusters, one control plane: edge agents over NATS, per-cluster identity, remote reads.

The edge agent runs in a member cluster, only dials out, and speaks for its own cluster alone:
its NATS user (one per cluster, an nkey whose public half is all the server holds) may publish
only that cluster's Signals and state, and receive only that cluster's gateway queries. Central
reads a member cluster through ``RemoteBackend``, which asks the agent over request/reply.
``subjects`` is the one place that says which subject belongs to whom.
"""
