"""What a member cluster's NATS user may and may not do, against a real nats-server.

Cluster ``a`` connects with its own credential. Everything its edge agent needs works; everything
that would let it speak for cluster ``b``, read ``b``'s state, listen to central or reshape
JetStream is refused by the server, with the exact violation asserted, and nothing is stored.
A test here fails if ``ClusterSubjects.permissions()`` is widened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import nats.errors
import pytest
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from aetherius.fleet.subjects import ClusterSubjects
from tests.fleet.clients import BUCKET, BUS, STREAM, Edge, connect_edge, violation
from tests.fleet.conftest import Fleet
from tests.hub import PATIENCE


def edge_kv(edge: Edge) -> KeyValue:
    """The state bucket as an edge agent opens it: without STREAM.INFO, which it may not call."""
    return KeyValue(
        name=BUCKET, stream=f"KV_{BUCKET}", pre=f"$KV.{BUCKET}.", js=edge.nc.jetstream(), direct=True
    )


@pytest.fixture
async def edge_a(fleet: Fleet) -> AsyncIterator[Edge]:
    edge = await connect_edge(fleet.central.url, fleet.a)
    try:
        yield edge
    finally:
        await edge.nc.close()


async def _stored(fleet: Fleet) -> tuple[int, dict[str, bytes]]:
    """(messages in the Signals stream, every key of the state bucket) as central sees them."""
    nc = await fleet.central.connect_central()
    try:
        js = nc.jetstream()
        messages = (await js.stream_info(STREAM)).state.messages
        kv = await js.key_value(BUCKET)
        keys: dict[str, bytes] = {}
        try:
            for key in await kv.keys():
                entry = await kv.get(key)
                keys[key] = bytes(entry.value or b"")
        except Exception as exc:  # nats-py raises NoKeysError for an empty bucket
            if type(exc).__name__ != "NoKeysError":
                raise
        return messages, keys
    finally:
        await nc.close()


async def test_the_edge_agent_can_do_its_job(fleet: Fleet, edge_a: Edge) -> None:
    subjects = ClusterSubjects.of("a", BUS)
    ack = await edge_a.nc.jetstream().publish(f"{BUS.subject_prefix}.a.events", b"signal", timeout=PATIENCE)
    assert ack.stream == STREAM and ack.seq == 1
    kv = edge_kv(edge_a)
    await kv.put("a.cursor.events", b"rv-42")
    await kv.put("health.a", b"alive")
    assert (await kv.get("a.cursor.events")).value == b"rv-42"
    # A gateway query from central, answered once on the reply subject central chose.
    queries = await edge_a.nc.subscribe(subjects.gateway())

    central = await fleet.central.connect_central()
    try:
        await edge_a.nc.flush()
        request = central.request(subjects.gateway("pods.list"), b"{}", timeout=PATIENCE)
        pending = asyncio.ensure_future(request)
        query: Msg = await queries.next_msg(timeout=PATIENCE)
        await query.respond(b"answer")
        assert (await pending).data == b"answer"
    finally:
        await central.close()
    await edge_a.nc.flush()
    assert edge_a.errors.empty(), edge_a.errors.get_nowait()
    messages, keys = await _stored(fleet)
    assert messages == 1
    assert keys == {"a.cursor.events": b"rv-42", "health.a": b"alive"}


async def test_it_cannot_publish_as_another_cluster(fleet: Fleet, edge_a: Edge) -> None:
    central = await fleet.central.connect_central()
    await central.jetstream().publish(f"{BUS.subject_prefix}.b.events", b"real b")
    b_kv = await central.jetstream().key_value(BUCKET)
    await b_kv.put("b.cursor.events", b"b's cursor")
    await b_kv.put("health.b", b"b alive")
    await central.close()
    before = await _stored(fleet)
    nc = edge_a.nc
    for subject in (
        f"{BUS.subject_prefix}.b.events",
        f"$KV.{BUCKET}.b.cursor.events",
        f"$KV.{BUCKET}.health.b",
        # Neither a wider subject than its own nor another cluster's dead-letter subject.
        f"{BUS.subject_prefix}.a",
        f"{BUS.subject_prefix}_dead.b",
    ):
        reply = nc.new_inbox()
        assert await edge_a.refused(
            lambda s=subject, r=reply: nc.publish(s, b"forged", reply=r)
        ) == violation("publish", subject)
    assert await _stored(fleet) == before


async def test_it_cannot_listen_to_another_cluster_or_central(fleet: Fleet, edge_a: Edge) -> None:
    nc = edge_a.nc
    refused_subjects = (
        "aetherius.gateway.b.>",
        "aetherius.gateway.>",
        f"{BUS.subject_prefix}.b.>",
        f"{BUS.subject_prefix}.>",
        "_INBOX.>",
        "_INBOX_b.>",
        f"$KV.{BUCKET}.b.>",
        ">",
    )
    subscriptions = {}
    for subject in refused_subjects:
        subscriptions[subject] = await nc.subscribe(subject)
        await nc.flush(timeout=PATIENCE)
        assert await edge_a.next_error() == violation("subscription", subject)
    # Proof that nothing reaches those subscriptions: central sends to each of them and then to
    # a's own gateway subject, on one connection; the server delivers in order, so once the last
    # one arrived the others would have come first.
    own = await nc.subscribe("aetherius.gateway.a.marker")
    await nc.flush(timeout=PATIENCE)
    central = await fleet.central.connect_central()
    try:
        for subject in ("aetherius.gateway.b.pods", f"{BUS.subject_prefix}.b.events", "_INBOX.central.1"):
            await central.publish(subject, b"not for a")
        await central.publish("aetherius.gateway.a.marker", b"marker")
        await central.flush()
    finally:
        await central.close()
    assert (await own.next_msg(timeout=PATIENCE)).data == b"marker"
    for subject, subscription in subscriptions.items():
        assert subscription.pending_msgs == 0, subject


@pytest.mark.parametrize(
    ("subject", "payload"),
    [
        ("$JS.API.STREAM.CREATE.x", {"name": "x", "subjects": ["x.>"]}),
        (f"$JS.API.STREAM.DELETE.{STREAM}", {}),
        (f"$JS.API.STREAM.PURGE.{STREAM}", {}),
        (f"$JS.API.STREAM.UPDATE.{STREAM}", {"name": STREAM, "subjects": [">"]}),
        (f"$JS.API.STREAM.INFO.{STREAM}", {}),
        (
            f"$JS.API.CONSUMER.CREATE.{STREAM}",
            {"stream_name": STREAM, "config": {"ack_policy": "explicit"}},
        ),
        (
            f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.steal",
            {"stream_name": STREAM, "config": {"durable_name": "steal", "ack_policy": "explicit"}},
        ),
        (f"$JS.API.STREAM.DELETE.KV_{BUCKET}", {}),
        # Reading b's state: the non-direct get, and a direct get with the key in the payload.
        (f"$JS.API.STREAM.MSG.GET.KV_{BUCKET}", {"last_by_subj": f"$KV.{BUCKET}.b.cursor.events"}),
        (f"$JS.API.DIRECT.GET.KV_{BUCKET}", {"last_by_subj": f"$KV.{BUCKET}.b.cursor.events"}),
        (f"$JS.API.DIRECT.GET.KV_{BUCKET}.$KV.{BUCKET}.b.cursor.events", None),
        (f"$JS.API.DIRECT.GET.KV_{BUCKET}.$KV.{BUCKET}.health.b", None),
    ],
)
async def test_it_cannot_reshape_jetstream_or_read_other_state(
    fleet: Fleet, edge_a: Edge, subject: str, payload: object
) -> None:
    nc = edge_a.nc
    data = b"" if payload is None else json.dumps(payload).encode()
    before, shape = await _stored(fleet), await _jetstream_shape(fleet)
    assert STREAM in shape and f"KV_{BUCKET}" in shape
    assert await edge_a.refused(lambda: nc.publish(subject, data, reply=nc.new_inbox())) == violation(
        "publish", subject
    )
    assert await _jetstream_shape(fleet) == shape
    assert await _stored(fleet) == before


async def _jetstream_shape(fleet: Fleet) -> dict[str, tuple[list[str], list[str]]]:
    """Every stream central provisioned: its subjects and its consumers' names."""
    central = await fleet.central.connect_central()
    try:
        js = central.jetstream()
        return {
            info.config.name or "": (
                sorted(info.config.subjects or []),
                sorted(c.name for c in await js.consumers_info(info.config.name or "")),
            )
            for info in await js.streams_info()
        }
    finally:
        await central.close()


async def test_a_direct_get_of_another_cluster_s_key_through_the_kv_api_is_refused(
    fleet: Fleet, edge_a: Edge
) -> None:
    central = await fleet.central.connect_central()
    await (await central.jetstream().key_value(BUCKET)).put("b.cursor.events", b"b's cursor")
    await central.close()
    kv = edge_kv(edge_a)
    pending = asyncio.ensure_future(kv.get("b.cursor.events"))
    subject = f"$JS.API.DIRECT.GET.KV_{BUCKET}.$KV.{BUCKET}.b.cursor.events"
    assert await edge_a.next_error() == violation("publish", subject)
    with pytest.raises(Exception, match="timeout"):
        await pending


async def test_it_answers_a_query_once_and_cannot_write_to_other_inboxes(fleet: Fleet, edge_a: Edge) -> None:
    """allow_responses max 1: one reply per query received; no publishing into central's inboxes."""
    nc = edge_a.nc
    queries = await nc.subscribe("aetherius.gateway.a.>")
    await nc.flush(timeout=PATIENCE)
    central = await fleet.central.connect_central()
    try:
        replies = await central.subscribe("_INBOX.query.1")
        forged = await central.subscribe("_INBOX.other.>")
        await central.flush()
        await central.publish("aetherius.gateway.a.pods", b"q", reply="_INBOX.query.1")
        query = await queries.next_msg(timeout=PATIENCE)
        await query.respond(b"first")
        assert (await replies.next_msg(timeout=PATIENCE)).data == b"first"
        assert await edge_a.refused(lambda: query.respond(b"second")) == violation(
            "publish", "_INBOX.query.1"
        )
        assert await edge_a.refused(lambda: nc.publish("_INBOX.other.1", b"x")) == violation(
            "publish", "_INBOX.other.1"
        )
        # Ordering proof, as above: a's next allowed publish reaches central after the refused ones.
        marker = await central.subscribe(f"{BUS.subject_prefix}.a.marker")
        await central.flush()
        # NB: published until one arrives (once, on a loaded machine, a first one never did); any
        # arrival proves the order, as everything a sent before it was handled before it.
        arrived = None
        while arrived is None:
            await nc.publish(f"{BUS.subject_prefix}.a.marker", b"m")
            await nc.flush(timeout=PATIENCE)
            with contextlib.suppress(nats.errors.TimeoutError):
                arrived = await marker.next_msg(timeout=1)
        assert arrived.data == b"m"
        assert replies.pending_msgs == 0 and forged.pending_msgs == 0
    finally:
        await central.close()
