"""Loading runbooks into the store: the shipped ones and the user's directories.

Run at start (and whenever a mounted ConfigMap changes): unchanged files are not rewritten, and a
runbook deleted from disk is deleted from the store, so the store mirrors the directories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aetherius.knowledge.runbooks import Runbook, load_runbooks
from aetherius.logs import get_logger
from aetherius.store import Store

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    shipped: int
    user: int
    removed: int
    problems: list[str] = field(default_factory=list)


async def _sync_source(store: Store, source: str, runbooks: list[Runbook]) -> int:
    for runbook in runbooks:
        await store.upsert_document(
            source=source,
            slug=runbook.slug,
            title=runbook.title,
            body=runbook.body,
            reasons=runbook.reasons,
            root_causes=runbook.root_causes,
        )
    return await store.delete_documents(source=source, keep=[r.slug for r in runbooks])


async def sync_runbooks(
    store: Store, *, shipped_dir: Path | None = None, user_dirs: Sequence[Path] = ()
) -> SyncResult:
    """Mirror the runbook directories into the store's knowledge documents."""
    problems: list[str] = []
    shipped: list[Runbook] = []
    if shipped_dir is not None:
        shipped, found = load_runbooks(shipped_dir)
        problems += found
    user: list[Runbook] = []
    slugs: set[str] = set()
    for directory in user_dirs:
        loaded, found = load_runbooks(directory)
        problems += found
        for runbook in loaded:
            if runbook.slug in slugs:
                problems.append(
                    f"{runbook.path}: slug {runbook.slug!r} already loaded from another directory"
                )
                continue
            slugs.add(runbook.slug)
            user.append(runbook)
    removed = await _sync_source(store, "shipped", shipped) + await _sync_source(store, "user", user)
    for problem in problems:
        log.warning("runbook_skipped", problem=problem)
    return SyncResult(shipped=len(shipped), user=len(user), removed=removed, problems=problems)


def shipped_runbooks_dir() -> Path:
    """Where the diagnosis engine's runbooks are packaged."""
    return Path(__file__).resolve().parent.parent / "diagnosis" / "runbooks"
