from __future__ import annotations

import asyncio

import pytest

from aetherius.bus import BusUnavailable, MemoryBus, open_bus
from aetherius.config import MessageBusSettings
from tests.bus.helpers import make_signal
from tests.waiting import until


async def test_publish_dedups_by_msg_id_and_consumer_gets_each_once() -> None:
    bus = MemoryBus()
    signals = [make_signal(f"p{i}") for i in range(10)]
    await bus.publish(signals)
    await bus.publish(signals[:5])  # a relist re-publishing the same occurrences
    await bus.publish([make_signal("p0", occurrence=2)])  # a new occurrence is new
    got = await bus.pull(durable="orch", batch=100, timeout=0.1)
    assert [d.signal.msg_id for d in got] == [s.msg_id for s in signals] + [
        make_signal("p0", occurrence=2).msg_id
    ]
    for delivery in got:
        await delivery.ack()
    assert await bus.pull(durable="orch", batch=100, timeout=0.05) == []
    assert len(bus) == 0  # acked by the only durable: retired


async def test_durable_is_shared_between_pullers() -> None:
    bus = MemoryBus()
    await bus.publish([make_signal(f"p{i}") for i in range(6)])
    first = await bus.pull(durable="orch", batch=3, timeout=0.1)
    second = await bus.pull(durable="orch", batch=10, timeout=0.1)
    names = [d.signal.object.name for d in first + second]
    assert sorted(names) == sorted(f"p{i}" for i in range(6))
    assert len(set(names)) == 6


async def test_nak_redelivers_then_dead_letters_after_max_deliver() -> None:
    bus = MemoryBus(max_deliver=3)
    await bus.publish([make_signal("poison")])
    seen = []
    for _ in range(3):
        (delivery,) = await bus.pull(durable="orch", batch=1, timeout=1.0)
        seen.append(delivery.deliveries)
        await delivery.nak()
    assert seen == [1, 2, 3]
    assert await bus.pull(durable="orch", batch=1, timeout=0.05) == []
    assert [s.object.name for s in bus.dead_letters] == ["poison"]


async def test_nak_delay_is_honoured_and_term_dead_letters() -> None:
    bus = MemoryBus()
    await bus.publish([make_signal("a"), make_signal("b")])
    a, b = await bus.pull(durable="orch", batch=2, timeout=0.1)
    await a.nak(delay=0.2)
    await b.term()
    assert await bus.pull(durable="orch", batch=2, timeout=0.01) == []
    (again,) = await bus.pull(durable="orch", batch=2, timeout=2.0)
    assert again.signal.object.name == "a" and again.deliveries == 2
    assert [s.object.name for s in bus.dead_letters] == ["b"]


async def test_unacked_delivery_comes_back_after_ack_wait() -> None:
    bus = MemoryBus(ack_wait=0.1)
    await bus.publish([make_signal("lost-worker")])
    (first,) = await bus.pull(durable="orch", batch=1, timeout=0.1)
    (second,) = await bus.pull(durable="orch", batch=1, timeout=2.0)
    assert second.deliveries == 2
    await first.ack()  # a late ack from the worker that lost it is ignored
    await second.ack()
    assert await bus.pull(durable="orch", batch=1, timeout=0.2) == []


async def test_bounded_bus_refuses_instead_of_dropping() -> None:
    bus = MemoryBus(max_messages=3)
    await bus.publish([make_signal(f"p{i}") for i in range(3)])
    with pytest.raises(BusUnavailable):
        await bus.publish([make_signal("p3")])
    (delivery,) = await bus.pull(durable="orch", batch=1, timeout=0.1)
    await delivery.ack()
    await bus.publish([make_signal("p3")])


async def test_pull_wakes_on_publish() -> None:
    bus = MemoryBus()
    puller = asyncio.create_task(bus.pull(durable="orch", batch=5, timeout=5.0))
    # the consumer exists once the pull found nothing and parked (no await in between)
    await until(lambda: "orch" in bus._consumers, "the pull waiting")
    assert not puller.done()
    await bus.publish([make_signal("late")])
    got = await asyncio.wait_for(puller, 2.0)
    assert [d.signal.object.name for d in got] == ["late"]


async def test_open_bus_memory_is_shared_per_url_and_keeps_kv() -> None:
    settings = MessageBusSettings(url="memory://shared-test")
    bus_a = await open_bus(settings)
    bus_b = await open_bus(settings)
    assert bus_a is bus_b
    kv = await bus_a.key_value("state")
    assert await kv.get("cursor") is None
    await kv.put("cursor", b"42")
    assert await (await bus_b.key_value("state")).get("cursor") == b"42"
    await bus_a.close()
    with pytest.raises(BusUnavailable):
        await bus_a.publish([make_signal("x")])
    assert (await open_bus(settings)) is not bus_a
