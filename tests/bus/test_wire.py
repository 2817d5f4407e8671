"""``AckPipeline`` over real JetStream, on its fast path (``bus/wire.py``) and on the public-API
fallback: the same messages stored with their ``Nats-Msg-Id``, duplicates counted, a rejection
(no stream for the subject) raised, and the fast path really in use with the nats-py we pin."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NatsClient

from aetherius.bus import wire
from aetherius.bus.base import BusUnavailable
from aetherius.bus.pipeline import AckPipeline


@contextlib.asynccontextmanager
async def _stream(nats_url: str) -> AsyncIterator[tuple[NatsClient, str]]:
    suffix = secrets.token_hex(4)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name=f"WIRE_{suffix}", subjects=[f"wire{suffix}.>"], duplicate_window=60)
    try:
        yield nc, f"wire{suffix}"
    finally:
        await js.delete_stream(f"WIRE_{suffix}")
        await nc.close()


async def _pipeline(nc: NatsClient, *, fast: bool, window: int = 8) -> AckPipeline:
    pipeline = AckPipeline(nc, window=window)
    if fast:
        await pipeline.start()
    else:
        # NB: a nats-py without the private API wire.py needs gets exactly this
        supported, wire.supported = wire.supported, lambda nc: False
        try:
            await pipeline.start()
        finally:
            wire.supported = supported
    assert pipeline.fast is fast
    return pipeline


def test_the_pinned_nats_py_has_what_the_fast_path_needs() -> None:
    # fails when an upgrade of nats-py renames or reshapes the private API bus/wire.py uses
    assert wire.supported(NatsClient())


@pytest.mark.parametrize("fast", [True, False], ids=["wire", "public-api"])
async def test_messages_are_stored_with_their_ids_and_replays_counted_as_duplicates(
    nats_url: str, fast: bool
) -> None:
    async with _stream(nats_url) as (nc, prefix):
        pipeline = await _pipeline(nc, fast=fast)
        messages = [(f"{prefix}.c1.event", f'{{"n":{i}}}'.encode(), f"id-{i}:1") for i in range(50)]
        assert await pipeline.publish(messages) == 0
        # two batches at once share the window of 8
        results = await asyncio.gather(pipeline.publish(messages[:20]), pipeline.publish(messages[20:30]))
        assert results == [20, 10]
        js = nc.jetstream()
        info = await js.stream_info(f"WIRE_{prefix[4:]}")
        assert info.state.messages == 50
        stored = await js.get_msg(f"WIRE_{prefix[4:]}", seq=7)
        assert stored.data == b'{"n":6}' and stored.subject == f"{prefix}.c1.event"
        assert (stored.headers or {}).get("Nats-Msg-Id") == "id-6:1"
        assert pipeline._in_flight == 0 and not pipeline._batches


@pytest.mark.parametrize("fast", [True, False], ids=["wire", "public-api"])
async def test_no_stream_for_the_subject_is_a_rejection_and_the_window_is_given_back(
    nats_url: str, fast: bool
) -> None:
    async with _stream(nats_url) as (nc, prefix):
        pipeline = await _pipeline(nc, fast=fast, window=4)
        with pytest.raises(BusUnavailable, match="no responders"):
            async with asyncio.timeout(5):
                await pipeline.publish([(f"nowhere{prefix}.x", b"{}", f"id-{i}") for i in range(10)])
        assert pipeline._in_flight == 0
        assert await pipeline.publish([(f"{prefix}.c1.event", b"{}", "after")]) == 0


async def test_a_subject_with_whitespace_is_refused_before_anything_is_written(nats_url: str) -> None:
    async with _stream(nats_url) as (nc, prefix):
        pipeline = await _pipeline(nc, fast=True)
        with pytest.raises(nats.errors.BadSubjectError):
            await pipeline.publish([(f"{prefix}.bad subject", b"{}", "id")])
        assert pipeline._in_flight == 0


async def test_a_payload_over_the_server_limit_is_refused(nats_url: str) -> None:
    async with _stream(nats_url) as (nc, prefix):
        pipeline = await _pipeline(nc, fast=True)
        with pytest.raises(nats.errors.MaxPayloadError):
            await pipeline.publish([(f"{prefix}.c1.event", b"x" * (nc.max_payload + 1), "big")])
        assert pipeline._in_flight == 0
