"""Runbooks and past incidents, retrieved by reason/root cause and text, on both databases."""

from __future__ import annotations

import shutil
from pathlib import Path

from aetherius.knowledge import StoreRetriever, load_runbooks, sync_runbooks
from aetherius.store import Store
from tests.knowledge.helpers import resolved_incident

FIXTURES = Path(__file__).parent / "fixtures"


def test_runbooks_load_with_and_without_front_matter() -> None:
    runbooks, problems = load_runbooks(FIXTURES / "shipped")
    by_slug = {r.slug: r for r in runbooks}
    assert sorted(by_slug) == ["image-not-found", "oom-killed", "probe-failure"]
    assert by_slug["oom-killed"].reasons == ("OOMKilled", "CrashLoopBackOff")
    assert by_slug["oom-killed"].root_causes == ("OutOfMemory",)
    assert by_slug["image-not-found"].title == "Image or tag does not exist"
    assert by_slug["probe-failure"].reasons == () and by_slug["probe-failure"].title == "Probe failing"
    assert problems == []


def test_a_broken_runbook_is_reported_and_the_rest_load() -> None:
    runbooks, problems = load_runbooks(FIXTURES / "user")
    assert [r.slug for r in runbooks] == ["our-oom"]  # the ConfigMap's ..data copy is skipped
    assert len(problems) == 1 and "broken.md: front matter is not valid YAML" in problems[0]
    missing, problems = load_runbooks(FIXTURES / "nowhere")
    assert missing == [] and "does not exist" in problems[0]


async def test_runbook_for_prefers_the_users_own_then_the_most_specific(store: Store) -> None:
    result = await sync_runbooks(store, shipped_dir=FIXTURES / "shipped", user_dirs=[FIXTURES / "user"])
    assert (result.shipped, result.user) == (3, 1) and len(result.problems) == 1
    retriever = StoreRetriever(store)

    oom = await retriever.runbook_for(reason="OOMKilled", root_cause="OutOfMemory")
    assert oom is not None and (oom.slug, oom.source) == ("our-oom", "user")
    crash = await retriever.runbook_for(reason="CrashLoopBackOff", root_cause="ApplicationError")
    assert crash is not None and crash.slug == "oom-killed"
    by_slug = await retriever.runbook_for(reason="Unhealthy", root_cause="ProbeFailure", slug="probe-failure")
    assert by_slug is not None and by_slug.slug == "probe-failure" and "readiness" in by_slug.body
    assert await retriever.runbook_for(reason="NodeNotReady", root_cause="NodeFailure") is None


async def test_sync_mirrors_the_directory(store: Store, tmp_path: Path) -> None:
    user = tmp_path / "user"
    shutil.copytree(FIXTURES / "user", user)
    await sync_runbooks(store, user_dirs=[user])
    assert [d.slug for d in await store.list_documents(source="user")] == ["our-oom"]
    (user / "our-oom.md").unlink()
    (user / "disk.md").write_text("---\nroot_causes: [NodeFailure]\n---\n# Disk pressure\nFree the disk.\n")
    result = await sync_runbooks(store, user_dirs=[user])
    assert result.removed == 1
    assert [d.slug for d in await store.list_documents(source="user")] == ["disk"]
    found = await StoreRetriever(store).runbook_for(reason="NodePressure", root_cause="NodeFailure")
    assert found is not None and found.slug == "disk"


async def test_similar_past_incidents_are_found_by_cause_and_words(store: Store) -> None:
    leak = await resolved_incident(
        store,
        reason="OOMKilled",
        root_cause="OutOfMemory",
        summary="Container api is killed for exceeding its 256Mi memory limit",
        note="raised the memory limit to 512Mi after finding a cache leak",
    )
    batch = await resolved_incident(
        store,
        reason="OOMKilled",
        root_cause="OutOfMemory",
        summary="Container worker killed for memory during the nightly batch",
        note="split the batch",
    )
    other = await resolved_incident(
        store,
        reason="ImagePullBackOff",
        root_cause="ImageNotFound",
        summary="Container api cannot pull image shop/api:v9, the tag does not exist",
        note="fixed the tag",
    )
    retriever = StoreRetriever(store)
    similar = await retriever.similar_incidents(
        text="Container api is killed for exceeding its 512Mi memory limit (14 restarts)",
        reason="OOMKilled",
        root_cause="OutOfMemory",
    )
    assert [s.incident_id for s in similar] == [leak, batch]
    assert similar[0].resolution.startswith("raised the memory limit") and similar[0].score > similar[1].score
    assert other not in {s.incident_id for s in similar}

    excluded = await retriever.similar_incidents(
        text="killed for memory", reason="OOMKilled", root_cause="OutOfMemory", exclude_incident=leak, limit=3
    )
    assert [s.incident_id for s in excluded] == [batch]
    assert await retriever.similar_incidents(text="", reason="", root_cause="") == []
    hits = await retriever.search("pull image tag")
    assert hits and hits[0].incident_id == other
    # Punctuation and quotes in user text are words, not query syntax.
    assert await retriever.search("\"'); DROP TABLE --  OR * NEAR(") == []
