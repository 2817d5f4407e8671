"""Knowledge: runbooks (shipped and the user's own) and past incidents, retrieved for reports.

``sync_runbooks(store, shipped_dir=, user_dirs=)`` mirrors markdown directories into the store;
``StoreRetriever(store)`` implements ``KnowledgeRetriever``: ``runbook_for(reason=, root_cause=,
slug=)``, ``similar_incidents(text=, reason=, root_cause=, exclude_incident=, limit=3)`` and
``search(text)``. Past incidents enter the knowledge base when they are resolved
(``Store.resolve_incident`` writes the document, with the resolution note).
"""

from __future__ import annotations

from aetherius.knowledge.retriever import KnowledgeRetriever, RunbookRef, SimilarIncident, StoreRetriever
from aetherius.knowledge.runbooks import Runbook, RunbookError, load_runbooks, parse_runbook
from aetherius.knowledge.sync import SyncResult, shipped_runbooks_dir, sync_runbooks

__all__ = [
    "KnowledgeRetriever",
    "Runbook",
    "RunbookError",
    "RunbookRef",
    "SimilarIncident",
    "StoreRetriever",
    "SyncResult",
    "load_runbooks",
    "parse_runbook",
    "shipped_runbooks_dir",
    "sync_runbooks",
]
