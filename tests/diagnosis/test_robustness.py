"""Fuzzing the loader and the analyzers: no input makes an exception escape a scan."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aetherius.diagnosis.engine import diagnose
from aetherius.gateway import SnapshotError, parse_snapshot, snapshot_gateway
from tests.scenarios.library import ROOT, scenario_names

_SEED: list[dict[str, Any]] = []
for _name in scenario_names():
    for _doc in yaml.safe_load_all((ROOT / _name / "snapshot.yaml").read_text()):
        if isinstance(_doc, dict):
            _SEED.extend(_doc.get("items") or [_doc])

# NB: values JSON can carry (objects come from the API as JSON): an infinity becomes null in JSON
# and stays inf in YAML, which would compare the encodings, not the diagnosis.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.text(max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(obj: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> dict[str, Any]:
    target: Any = obj
    for part in path[:-1]:
        target = target[part]
    if not path:
        return obj
    if delete and isinstance(target, dict):
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return obj


def _identity(obj: Any) -> str:
    """How the engine's warnings name an object: ``Kind namespace/name`` (``Kind name``)."""
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(metadata, dict):
        return f"{obj.get('kind')} ?"
    ns = metadata.get("namespace")
    return (
        f"{obj.get('kind')} {ns}/{metadata.get('name')}"
        if ns
        else f"{obj.get('kind')} {metadata.get('name')}"
    )


def _scan(items: list[Any], *, altered: set[str] | None = None) -> None:
    """Scan; no analyzer bug. With ``altered`` (the objects really made malformed, the rest being
    the scenario library's well-formed ones), only those may be said "malformed": the engine
    calls a TypeError or AttributeError malformed, so an analyzer bug raising one on a good object
    would otherwise pass as bad input."""
    try:
        state = parse_snapshot(orjson.dumps({"kind": "List", "items": items}))
    except SnapshotError:
        return
    result = asyncio.run(diagnose(snapshot_gateway(state)))
    # Malformed input is a warning; an analyzer looking up a key or index that is not there is a
    # bug, which the engine reports as "internal error" and this test refuses.
    bugs = [w for w in result.warnings if "internal error" in w]
    assert bugs == [], bugs
    if altered is not None:
        wrongly = [
            w
            for w in result.warnings
            if " skipped: malformed" in w
            and not (w.startswith("logs of running pods") and altered)
            and w.split(" skipped: ", 1)[0] not in altered
        ]
        assert wrongly == [], (wrongly, sorted(altered))


def _mutated(data: st.DataObject, *, least: int) -> tuple[list[dict[str, Any]], set[str]]:
    """Real objects of the scenario library with a few values replaced or removed, and the
    identities (as warnings name them, before and after) of those that were changed."""
    items = [
        copy.deepcopy(obj) for obj in data.draw(st.lists(st.sampled_from(_SEED), min_size=1, max_size=6))
    ]
    altered: set[str] = set()
    for obj in items:
        before = _identity(obj)
        changed = False
        paths = _paths(obj)
        for _ in range(data.draw(st.integers(least, 4))):
            path = data.draw(st.sampled_from(paths))
            if not path or path[0] in ("kind",):
                continue
            try:
                _mutate(obj, path, data.draw(values), data.draw(st.booleans()))
            except (KeyError, IndexError, TypeError):
                continue
            changed = True
            paths = _paths(obj)
        if changed:
            altered |= {before, _identity(obj)}
    return items, altered


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_objects_never_crash(data: st.DataObject) -> None:
    items, altered = _mutated(data, least=1)
    _scan(items, altered=altered)


def test_the_scenario_library_is_well_formed() -> None:
    """The seeds of the fuzzing above: not one said malformed (so any such warning there is a
    changed object's, or a bug)."""
    _scan(copy.deepcopy(_SEED), altered=set())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_json_fast_path_finds_what_the_tolerant_path_finds(data: st.DataObject) -> None:
    """The analysis view (slim dicts, ``PlainPod``) never changes a finding, whatever the types."""
    items, _ = _mutated(data, least=0)
    snapshot = {"kind": "List", "items": items}
    try:
        fast = parse_snapshot(orjson.dumps(snapshot))
    except SnapshotError:
        return
    tolerant = parse_snapshot(yaml.safe_dump(snapshot, sort_keys=False).encode())
    found = asyncio.run(diagnose(snapshot_gateway(fast))).findings
    assert found == asyncio.run(diagnose(snapshot_gateway(tolerant))).findings


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_snapshot_or_a_clear_error(data: bytes) -> None:
    try:
        state = parse_snapshot(data)
    except SnapshotError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    asyncio.run(diagnose(snapshot_gateway(state)))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["kind", "metadata", "spec", "status", "items", "involvedObject"]),
            values,
            max_size=5,
        ),
        max_size=5,
    ),
    st.sampled_from(
        [
            "Pod",
            "Node",
            "Deployment",
            "Service",
            "Event",
            "Job",
            "PersistentVolumeClaim",
            "Ingress",
            "HorizontalPodAutoscaler",
        ]
    ),
)
def test_random_objects_of_known_kinds_never_crash(items: list[dict[str, Any]], kind: str) -> None:
    for item in items:
        item["kind"] = kind
    _scan(items)
