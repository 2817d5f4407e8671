"""The store: PostgreSQL in production, a SQLite file by default, one schema, Alembic migrations.

Open it once per process and share it (it holds a connection pool)::

    store = await Store.from_settings(settings)          # or Store.open(url, migrate_schema=True)
    ...
    await store.close()

Every method is a coroutine and runs its own short transaction; records are frozen dataclasses
from ``aetherius.store.records``. Errors: ``StoreUnavailable`` (database not answering),
``SchemaOutOfDate`` (run ``aetherius db upgrade``), ``NotFound`` (404), ``InvalidTransition``
(409), ``InvalidCursor`` (400), all ``StoreError`` with a message meant for a person.

Signals and incidents (orchestrator)
    ``record_signal(signal, incident_id=None) -> RecordedSignal(id, duplicate)``: unique on
    (dedup_key, occurrence); a duplicate is a reported no-op.
    ``record_failures([(IncidentUpsert, Signal), ...], reopen_within=24h) -> [IncidentChange]``:
    ``upsert_incident`` for a batch of Signals in one transaction with a fixed number of
    statements (a duplicate's change has ``duplicate`` set and the open incident, if any).
    ``upsert_incident(IncidentUpsert(...), signal=None, reopen_within=24h) -> IncidentChange``:
    open, update or reopen the one unresolved incident of a fingerprint (never two, whatever the
    number of replicas), storing ``signal`` in the same transaction (duplicate → nothing changes,
    ``change.duplicate``) and queueing notifications (``change.events``: new/reopened/escalated).
    ``find_open_incident(fingerprint)``, ``resolve_incident(id, by=, note=)`` (also writes the
    past-incident knowledge document), ``acknowledge_incident(id, by=, note=)``.
    ``acquire_cooldown(key, ttl=, evidence_hash=) -> bool`` / ``clear_cooldown(key)``: the
    fallback when Redis is down.
    ``upsert_cluster(id, name=, detected_by=, watcher_health=)``.

Reports and audit (orchestrator, gateway)
    ``add_report(incident_id, document=, markdown=, root_cause=, severity=, summary=,
    evidence_hash=, reason=) -> Report``: the next version; releases held notifications.
    ``record_audit([AuditEntry(...), ...])``: a batch of Execution Gateway reads.

Reading (API, dashboard, CLI)
    ``list_incidents(IncidentFilters(cluster_id=, namespace=, severity=, state=, unresolved=,
    reason=, root_cause=, text=), cursor=None, limit=50) -> IncidentPage(items, next_cursor)``:
    most recently active first (last_seen, id), keyset pagination.
    ``list_incident_rows(filters, columns=, cursor=, limit=) -> IncidentRows(columns, rows,
    next_cursor)``: the same page as bare rows of some of ``Incident``'s fields (the API's list).
    ``incident_story(id, signals_limit=, audit_limit=) -> IncidentStory(incident, reports,
    signals, audit)``: the incident page in one snapshot.
    ``get_incident(id)``, ``list_reports(id)`` (newest first), ``latest_report(id)``,
    ``incident_signals(id)`` (timeline, oldest first), ``list_audit(incident_id=|report_id=|
    scan_id=)``, ``list_clusters()``, ``get_cluster(id)``, ``last_signal(cluster_id)``,
    ``list_deliveries(incident_id=, status=)``.

Investigations (``aetherius.reasoning.service``)
    ``create_investigation(incident_id, trigger=, requested_by=, question=)``,
    ``get_investigation(id)``, ``list_investigations(incident_id)``,
    ``add_investigation_progress(id, event)``, ``begin_investigation_turn(id, question=)``,
    ``finish_investigation(id, answer=, conversation=, report=, markdown=)``: an answer, and with
    ``report`` the incident's next report version (``source="investigation"``, model, tokens, cost,
    ending), never its root cause. Without Redis: ``cached_answer``/``cache_answer`` and
    ``spend_tokens``/``spent_tokens`` (a cluster's daily token spend, shared by replicas).

Tokens (API)
    ``create_token(name=, role=) -> CreatedToken(token, secret)`` (the secret is shown once,
    only its hash is stored), ``verify_token(secret) -> ApiToken | None``, ``list_tokens()``,
    ``revoke_token(id)``, ``count_tokens(role=)``.

Knowledge (``aetherius.knowledge`` builds on these)
    ``upsert_document(source=, slug=, title=, body=, reasons=, root_causes=)``,
    ``find_runbooks(reason=, root_cause=, slug=)``, ``search_documents(text, sources=,
    exclude_incident=, limit=)`` (FTS5 on SQLite, tsvector + GIN on PostgreSQL).

Notification outbox (``aetherius.reports.dispatcher``)
    ``claim_deliveries(limit=, lease=)``, ``mark_delivered(id)``, ``mark_delivery_failed(id,
    error=, retry_in=)``, ``mark_delivery_dropped(id, error=)``.

Housekeeping
    ``prune(older_than=, batch_size=)``: signals, audit rows, sent deliveries, expired marks.
    Migrations: ``aetherius.store.migrate.upgrade(engine)`` / ``downgrade`` / ``current_revision``;
    ``aetherius db upgrade|current`` on the command line.
"""

from __future__ import annotations

from aetherius.store.engine import (
    InvalidCursor,
    InvalidTransition,
    NotFound,
    SchemaOutOfDate,
    StoreError,
    StoreUnavailable,
    resolve_url,
)
from aetherius.store.records import (
    ApiToken,
    AuditEntry,
    AuditRecord,
    Cluster,
    CreatedToken,
    Delivery,
    Incident,
    IncidentChange,
    IncidentFilters,
    IncidentPage,
    IncidentRows,
    IncidentStory,
    IncidentUpsert,
    InvestigationRecord,
    KnowledgeDocument,
    PruneResult,
    ReasoningSpend,
    RecordedSignal,
    Report,
    SignalRecord,
)
from aetherius.store.store import Store

__all__ = [
    "ApiToken",
    "AuditEntry",
    "AuditRecord",
    "Cluster",
    "CreatedToken",
    "Delivery",
    "Incident",
    "IncidentChange",
    "IncidentFilters",
    "IncidentPage",
    "IncidentRows",
    "IncidentStory",
    "IncidentUpsert",
    "InvalidCursor",
    "InvalidTransition",
    "InvestigationRecord",
    "KnowledgeDocument",
    "NotFound",
    "PruneResult",
    "ReasoningSpend",
    "RecordedSignal",
    "Report",
    "SchemaOutOfDate",
    "SignalRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "resolve_url",
]
