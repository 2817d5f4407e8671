"""Investigations of stored incidents: started by a person (the API) or by the orchestrator, run in
the background within a bounded number at once, their progress and answers kept in the store.

Why the store and not this process: an API replica other than the one running an investigation
may be asked for its status, its live progress or a follow-up question; each answer becomes a
report version of the incident (``source: investigation``) beside the rules' reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import Callable
from typing import Any

import structlog

from aetherius.config import ReasoningSettings
from aetherius.gateway import AuditSink, ExecutionGateway, MemoryAuditSink
from aetherius.knowledge import load_runbooks, shipped_runbooks_dir
from aetherius.reasoning.answer import Answer
from aetherius.reasoning.investigator import Incident, Investigation, Investigator
from aetherius.reasoning.tools import Toolbox
from aetherius.store import AuditEntry, InvestigationRecord, Store

__all__ = ["GatewayFor", "Investigations", "ReasoningUnavailable", "answer_document", "answer_markdown"]

log = structlog.get_logger(__name__)

GatewayFor = Callable[[str, AuditSink], ExecutionGateway]
"""``(cluster id, audit sink) -> gateway``: how an investigation reads the incident's cluster."""


@functools.cache
def _shipped_runbooks() -> dict[str, str]:
    runbooks, _ = load_runbooks(shipped_runbooks_dir())
    found: dict[str, str] = {}
    for runbook in runbooks:
        for name in (*runbook.root_causes, *runbook.reasons, runbook.slug):
            found.setdefault(name.lower(), runbook.body)
    return found


def shipped_runbook(reason: str) -> str | None:
    """The shipped runbook for a reason of the diagnosis contract (the runbook tool): named in its
    front matter, or by its slug (``OOMKilled`` → ``oom-killed``)."""
    slug = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", reason.strip()).lower()
    known = _shipped_runbooks()
    return known.get(reason.strip().lower()) or known.get(slug)


class ReasoningUnavailable(Exception):
    """Reasoning is off or not configured; the message says which key to set."""


def answer_document(answer: Answer, *, investigation_id: str, question: str) -> dict[str, Any]:
    """The report version of an answer: told apart from a rules report by ``source``."""
    return {
        "source": "investigation",
        "investigation_id": investigation_id,
        "question": question,
        "summary": answer.summary,
        "root_cause": answer.root_cause,
        "evidence": [e.model_dump() for e in answer.evidence],
        "next_steps": answer.next_steps,
        "kubectl": answer.kubectl,
        "model": answer.model,
        "steps": answer.steps,
        "tokens_in": answer.input_tokens,
        "tokens_out": answer.output_tokens,
        "cost": answer.cost,
        "ending": answer.ending,
        "ending_detail": answer.ending_detail,
    }


def answer_markdown(answer: Answer, *, question: str) -> str:
    lines = [f"# Investigation ({answer.model}, {answer.ending})", ""]
    if question:
        lines += [f"> {question}", ""]
    lines += [answer.summary, "", f"Root cause: {answer.root_cause}", ""]
    if answer.evidence:
        lines.append("## Evidence")
        for e in answer.evidence:
            mark = "verified" if e.verified else "unverified: not found in what the tools returned"
            lines.append(f"- {e.claim}: `{e.quote}` ({mark})")
        lines.append("")
    for title, items in (("Next steps", answer.next_steps), ("Commands", answer.kubectl)):
        if items:
            lines += [f"## {title}", *(f"- {x}" for x in items), ""]
    lines.append(
        f"{answer.input_tokens} tokens in, {answer.output_tokens} out, cost {answer.cost:.6f}, "
        f"{answer.steps} steps."
    )
    return "\n".join(lines) + "\n"


class Investigations:
    """Start, continue and run investigations; at most ``max_concurrent`` run at once per process."""

    def __init__(
        self,
        *,
        store: Store,
        settings: ReasoningSettings,
        investigator: Investigator | None,
        gateway_for: GatewayFor | None,
        max_concurrent: int = 4,
        redis: Any = None,
    ) -> None:
        self.store = store
        self._redis = redis  # closed with this object (the cache and budget's client)
        self.settings = settings
        self.investigator = investigator
        self.gateway_for = gateway_for
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def available(self) -> bool:
        return self.investigator is not None and self.gateway_for is not None

    def why_unavailable(self) -> str:
        if not self.settings.enabled:
            return "reasoning is disabled (set reasoning.enabled: true, see docs/reasoning.md)"
        if self.investigator is None:
            return "reasoning is not configured (reasoning.base_url and reasoning.model)"
        return "this process cannot read the cluster for an investigation"

    def _require(self) -> tuple[Investigator, GatewayFor]:
        if self.investigator is None or self.gateway_for is None:
            raise ReasoningUnavailable(self.why_unavailable())
        return self.investigator, self.gateway_for

    async def start(
        self, incident_id: int, *, requested_by: str, trigger: str = "person", question: str = ""
    ) -> InvestigationRecord:
        """Record a new investigation and run it in the background (``NotFound`` for no incident).

        Refused at once, with ``ending: daily-budget``, when the cluster spent its tokens today.
        """
        investigator, _ = self._require()
        record = await self.store.create_investigation(
            incident_id, trigger=trigger, requested_by=requested_by, question=question
        )
        return await self._launch(investigator, record, question=question, history=None)

    async def follow_up(self, investigation_id: str, *, question: str) -> InvestigationRecord:
        """Ask a question in an investigation's conversation (``InvalidTransition`` while it runs)."""
        investigator, _ = self._require()
        record = await self.store.begin_investigation_turn(
            investigation_id, question=question, stale_after=2 * self.settings.wall_clock_seconds + 60
        )
        conversation = record.conversation
        history = None
        if conversation.get("messages"):
            history = Investigation(
                id=record.id,
                answer=Answer.model_validate(record.answer),
                messages=list(conversation["messages"]),
                tool_outputs=list(conversation.get("tool_outputs") or []),
                names=dict(conversation.get("names") or {}),
            )
        # NB: a cached answer has no conversation: its follow-up is a new one, with the question.
        return await self._launch(investigator, record, question=question, history=history)

    async def _launch(
        self,
        investigator: Investigator,
        record: InvestigationRecord,
        *,
        question: str,
        history: Investigation | None,
    ) -> InvestigationRecord:
        if await investigator.budget.remaining(record.cluster_id) <= 0:
            refused = Answer(
                summary=(
                    f"Not investigated: cluster {record.cluster_id} spent its daily budget of "
                    f"{investigator.budget.limit} tokens (reasoning.daily_tokens_per_cluster). "
                    "The rules' answer stands."
                ),
                ending="daily-budget",
                ending_detail=f"cluster {record.cluster_id} spent its {investigator.budget.limit} tokens today",
                model=investigator.client.model,
            )
            return await self.store.finish_investigation(
                record.id, answer=refused.model_dump(), conversation=record.conversation, report=None
            )
        task = asyncio.create_task(
            self._run(investigator, record, question, history), name=f"inv-{record.id}"
        )
        self._tasks[record.id] = task
        task.add_done_callback(self._forget)
        return record

    def _forget(self, task: asyncio.Task[None]) -> None:
        for key, running in list(self._tasks.items()):
            if running is task:
                del self._tasks[key]

    async def wait(self, investigation_id: str) -> InvestigationRecord:
        """The investigation once this process has finished running it (tests, the CLI)."""
        task = self._tasks.get(investigation_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        return await self.store.get_investigation(investigation_id)

    async def close(self) -> None:
        """Stop what runs (each says it was stopped) and close the model and Redis clients."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.investigator is not None:
            await self.investigator.client.aclose()
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    async def _run(
        self,
        investigator: Investigator,
        record: InvestigationRecord,
        question: str,
        history: Investigation | None,
    ) -> None:
        audit = MemoryAuditSink()
        try:
            async with self._slots:
                result = await self._investigate(investigator, record, question, history, audit)
            answer = result.answer
            called = answer.steps > 0 or answer.ending == "cached"
            conversation = (
                {"messages": result.messages, "tool_outputs": result.tool_outputs, "names": result.names}
                if result.messages
                else record.conversation
            )
            await self.store.finish_investigation(
                record.id,
                answer=answer.model_dump(),
                conversation=conversation,
                report=answer_document(answer, investigation_id=record.id, question=question)
                if called
                else None,
                markdown=answer_markdown(answer, question=question),
            )
        except asyncio.CancelledError:
            # NB: the process is stopping: the investigation says so instead of running forever
            await asyncio.shield(self._failed(record, "stopped with the process that ran it"))
            raise
        except Exception as exc:  # NB: an investigation never ends without saying why
            log.warning("reasoning.investigation_failed", investigation=record.id, error=repr(exc))
            await self._failed(record, f"{type(exc).__name__}: {exc}")
        finally:
            if audit.records:
                with contextlib.suppress(Exception):
                    await self.store.record_audit(
                        [
                            AuditEntry(
                                operation=r.operation,
                                resource=r.resource,
                                namespace=r.namespace,
                                name=r.name,
                                bytes=r.bytes,
                                outcome=r.outcome,
                                cluster_id=record.cluster_id,
                                incident_id=record.incident_id,
                                scan_id=f"investigation:{record.id}"[:64],
                                at=r.time,
                            )
                            for r in audit.records
                        ]
                    )

    async def _failed(self, record: InvestigationRecord, detail: str) -> None:
        failed = Answer(
            summary="The investigation ended without an answer. The rules' answer stands.",
            ending="failed",
            ending_detail=detail[:500],
        )
        with contextlib.suppress(Exception):
            await self.store.finish_investigation(
                record.id, answer=failed.model_dump(), conversation=record.conversation, report=None
            )

    async def _investigate(
        self,
        investigator: Investigator,
        record: InvestigationRecord,
        question: str,
        history: Investigation | None,
        audit: MemoryAuditSink,
    ) -> Investigation:
        _, gateway_for = self._require()
        incident = await self.store.get_incident(record.incident_id)
        rules = await self.store.latest_report(record.incident_id)
        findings = (
            tuple(f for f in (rules.document.get("findings") or []) if isinstance(f, dict)) if rules else ()
        )
        subject = Incident(
            id=str(incident.id),
            cluster=incident.cluster_id,
            namespace=incident.namespace or None,
            kind=incident.object_kind,
            name=incident.object_name,
            rules_summary=(
                f"{incident.root_cause or 'Unknown'}: {incident.summary}" if incident.summary else "Unknown"
            ),
            findings=findings,
        )
        store = self.store

        async def similar() -> list[dict[str, Any]]:
            """Past incidents like this one, with how they were resolved (the knowledge base)."""
            words = f"{incident.reason} {incident.root_cause} {incident.summary}"
            hits = await store.search_documents(
                words, sources=("incident",), exclude_incident=incident.id, limit=5
            )
            return [{"title": h.title, "root_cause": h.root_cause, "text": h.body[:600]} for h in hits]

        toolbox = Toolbox(
            gateway=gateway_for(incident.cluster_id, audit),
            requester=f"investigation:{record.id}",
            namespace=subject.namespace,
            widen=self.settings.widen_scope,
            output_chars=self.settings.per_tool_output_chars,
            runbooks=shipped_runbook,
            similar=similar,
        )

        async def progress(event: dict[str, Any]) -> None:
            if event.get("event") == "done":
                return  # NB: the store says done once the answer is saved (finish_investigation)
            with contextlib.suppress(Exception):  # NB: progress is a courtesy; the answer is what counts
                await self.store.add_investigation_progress(record.id, event)

        return await investigator.investigate(
            subject,
            toolbox,
            question=question,
            history=history,
            progress=progress,
            investigation_id=record.id,
        )
