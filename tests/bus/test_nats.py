from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import nats
import pytest

from aetherius.bus import BusUnavailable, open_bus
from aetherius.bus.nats import NatsBus
from aetherius.config import MessageBusSettings
from aetherius.signals import decode_signal
from tests.bus.helpers import make_signal
from tests.services import PrivateNats


def _settings(url: str, **extra: object) -> MessageBusSettings:
    suffix = secrets.token_hex(4)
    values: dict[str, object] = {
        "url": url,
        "stream": f"TEST_{suffix}",
        "subject_prefix": f"test{suffix}.signals",
        "kv_bucket": f"state_{suffix}",
        "publish_window": 64,
        "publish_timeout": timedelta(seconds=3),
        "reconnect_delay": timedelta(seconds=0.2),
        "max_reconnect_attempts": -1,
    }
    values.update(extra)
    return MessageBusSettings.model_validate(values)


async def _cleanup(bus: NatsBus) -> None:
    nc = await nats.connect(bus.settings.url)
    js = nc.jetstream()
    for stream in (bus.stream, bus.dead_stream, f"KV_{bus.settings.kv_bucket}"):
        try:
            await js.delete_stream(stream)
        except nats.js.errors.NotFoundError:
            pass
    await nc.close()


async def test_publish_pipelined_dedup_and_work_sharing(nats_url: str) -> None:
    bus = await open_bus(_settings(nats_url))
    assert isinstance(bus, NatsBus)
    try:
        signals = [make_signal(f"p{i}") for i in range(500)]
        await bus.publish(signals)
        await bus.publish(signals[:100])  # replay: dropped by the server's duplicate window
        info = await bus._ensure()
        stream = await info.stream_info(bus.stream)
        assert stream.state.messages == 500
        assert stream.config.subjects == [f"{bus.prefix}.>"]

        replica_a = await open_bus(bus.settings)
        got: list[str] = []
        while len(got) < 500:
            batch_a = await replica_a.pull(durable="orch", batch=64, timeout=1.0)
            batch_b = await bus.pull(durable="orch", batch=64, timeout=1.0)
            assert batch_a or batch_b
            for delivery in batch_a + batch_b:
                got.append(delivery.signal.msg_id)
                await delivery.ack()
        assert sorted(got) == sorted(s.msg_id for s in signals)
        assert await bus.pull(durable="orch", batch=10, timeout=0.3) == []
        await replica_a.close()
    finally:
        await _cleanup(bus)
        await bus.close()


async def test_nak_redelivery_and_dead_letter_subject(nats_url: str) -> None:
    bus = await open_bus(_settings(nats_url, max_deliver=2))
    assert isinstance(bus, NatsBus)
    try:
        await bus.publish([make_signal("poison"), make_signal("fine")])
        first = await bus.pull(durable="orch", batch=2, timeout=2.0)
        assert [d.deliveries for d in first] == [1, 1]
        by_name = {d.signal.object.name: d for d in first}
        await by_name["fine"].ack()
        await by_name["poison"].nak(delay=0.1)
        (again,) = await bus.pull(durable="orch", batch=2, timeout=3.0)
        assert again.signal.object.name == "poison" and again.deliveries == 2
        await again.nak()  # the last allowed delivery: dead-lettered
        assert await bus.pull(durable="orch", batch=2, timeout=0.5) == []

        nc = await nats.connect(nats_url)
        sub = await nc.jetstream().subscribe(f"{bus.dead_prefix}.>", stream=bus.dead_stream)
        msg = await sub.next_msg(timeout=3)
        assert decode_signal(msg.data).object.name == "poison"
        assert msg.headers is not None and msg.headers["Aetherius-Dead-Cause"] == "max_deliver"
        await nc.close()
    finally:
        await _cleanup(bus)
        await bus.close()


async def test_key_value_bucket_created_and_persisted(nats_url: str) -> None:
    bus = await open_bus(_settings(nats_url))
    assert isinstance(bus, NatsBus)
    try:
        kv = await bus.key_value(bus.settings.kv_bucket)
        assert await kv.get("cursor.events") is None
        await kv.put("cursor.events", b"1234")
        other = await open_bus(bus.settings)
        assert await (await other.key_value(bus.settings.kv_bucket)).get("cursor.events") == b"1234"
        await other.close()
    finally:
        await _cleanup(bus)
        await bus.close()


async def test_unreachable_nats_is_bus_unavailable() -> None:
    from tests.services import free_port

    settings = _settings(f"nats://127.0.0.1:{free_port()}", max_reconnect_attempts=0)
    with pytest.raises(BusUnavailable):
        await open_bus(settings)


async def test_publish_survives_a_nats_restart(own_nats: PrivateNats) -> None:
    bus = await open_bus(_settings(own_nats.url))
    try:
        await bus.publish([make_signal(f"before{i}") for i in range(50)])
        own_nats.stop()
        with pytest.raises(BusUnavailable):
            await bus.publish([make_signal("during")])
        own_nats.start()
        for _ in range(50):  # the client reconnects on its own; the caller retries the batch
            try:
                await bus.publish([make_signal("during"), make_signal("before0")])
                break
            except BusUnavailable:
                await asyncio.sleep(0.2)
        else:
            pytest.fail("publish never recovered after NATS came back")
        names = []
        while True:
            batch = await bus.pull(durable="orch", batch=100, timeout=1.0)
            if not batch:
                break
            for delivery in batch:
                names.append(delivery.signal.object.name)
                await delivery.ack()
        assert sorted(names) == sorted([f"before{i}" for i in range(50)] + ["during"])
    finally:
        await bus.close()
