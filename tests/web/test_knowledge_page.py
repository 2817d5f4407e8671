"""The knowledge page as a newcomer uses it: a past incident titled by what broke and linked,
every runbook one click away, and a report's similar incidents linked with their resolution."""

from __future__ import annotations

import secrets

import httpx

from aetherius.store import Store
from tests.api.conftest import Tokens
from tests.api.seed import seed_incident, unique_cluster
from tests.web.test_sessions import login


async def test_past_incidents_say_what_broke_and_runbooks_open(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    word = f"zq{secrets.token_hex(3)}"
    past = await seed_incident(
        store,
        cluster=unique_cluster(),
        name="frontend",
        reason="ImagePullBackOff",
        root_cause="ImageNotFound",
    )
    # NB: the note is the search's match and sits past the snippet's 220 characters of context
    filler = " ".join(f"step{i}" for i in range(60))
    note = f"Tag was never pushed {word}. {filler} Fixed by pushing v1.4.2."
    await store.resolve_incident(past.id, by="someone", note=note)
    hits = (await client.get("/api/v1/knowledge", params={"q": word}, headers=tokens.header("viewer"))).json()
    assert [(h["incident_id"], h["resolution"]) for h in hits] == [(past.id, note)]
    assert "v1.4.2" not in hits[0]["snippet"], "the snippet alone would have hidden how it ended"
    await login(client, tokens.viewer)
    page = (await client.get(f"/knowledge?q={word}")).text
    assert f"<strong>Resolved with:</strong> {note}</p>" in page
    assert (
        f'<a href="/incidents/{past.id}">#{past.id} The image does not exist: Deployment shop/frontend</a>'
        in page
    )
    assert "ImagePullBackOff on Deployment" not in page
    listed = (await client.get("/knowledge?q=OOMKilled")).text
    assert '<a href="/knowledge/runbooks/oom-killed">OOMKilled</a>' in listed
    runbook = await client.get("/knowledge/runbooks/oom-killed")
    assert runbook.status_code == 200 and "kubectl get pod -n NS POD" in runbook.text
    assert 'aria-current="page">Knowledge' in runbook.text
    assert (await client.get("/knowledge/runbooks/no-such-runbook")).status_code == 404


async def test_similar_incidents_link_to_their_resolution(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    incident = await seed_incident(store, cluster=unique_cluster(), with_report=False)
    similar = {"incident_id": 41, "title": "OOMKilled on Deployment shop/api", "root_cause": "OutOfMemory"}
    document = {
        "title": "Out of memory: Deployment shop/api",
        "similar_incidents": [{**similar, "resolution": "Raised to 512Mi"}],
    }
    await store.add_report(incident.id, document=document, markdown="", root_cause="OutOfMemory", summary="x")
    await login(client, tokens.viewer)
    page = (await client.get(f"/incidents/{incident.id}")).text
    assert '<a href="/incidents/41">#41 Out of memory: Deployment shop/api</a>' in page
    assert "Resolved: Raised to 512Mi" in page


async def test_a_reopened_incident_says_so_with_its_earlier_note(
    client: httpx.AsyncClient, store: Store, tokens: Tokens
) -> None:
    cluster, name = unique_cluster(), f"svc{secrets.token_hex(3)}"
    incident = await seed_incident(store, cluster=cluster, name=name)
    await store.resolve_incident(incident.id, by="someone", note="Raised the limit; watching it")
    again = await seed_incident(store, cluster=cluster, name=name, with_report=False)
    assert again.id == incident.id and again.state == "open" and again.reopen_count == 1
    await login(client, tokens.viewer)
    page = (await client.get(f"/incidents/{incident.id}")).text
    assert 'data-testid="reopened"' in page and "it failed again after it was resolved" in page
    assert "<blockquote>Raised the limit; watching it</blockquote>" in page  # cleared on the incident, kept
