"""The few fields of watch events, Events and Pods that Signals need, as msgspec Structs.

msgspec skips every field a Struct does not name while it parses, so decoding an Event into
these costs a fraction of building a dict (and far less than the official client's models).
One ``WatchEvent`` Struct per resource also decodes ``BOOKMARK`` (only ``metadata``) and
``ERROR`` objects of the Events watch (a ``Status``), since every field is optional; an ``ERROR``
that does not fit (a Pod's ``status`` is an object, a Status's a string) is decoded as ``Status``.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec


class WatchChange(Protocol):
    """One change of a watch (a ``*WatchEvent``): ADDED, MODIFIED or DELETED and the object."""

    @property
    def type(self) -> str: ...

    @property
    def object(self) -> Any: ...


class OwnerRef(msgspec.Struct, frozen=True, gc=False):
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool = False


class Meta(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    labels: dict[str, str] | None = None
    ownerReferences: list[OwnerRef] | None = None
    deletionTimestamp: str | None = None


class InvolvedObject(msgspec.Struct, frozen=True, gc=False):
    kind: str = ""
    name: str = ""
    namespace: str = ""
    uid: str = ""
    fieldPath: str = ""


class Series(msgspec.Struct, frozen=True, gc=False):
    count: int = 0
    lastObservedTime: str | None = None


class KubeEvent(msgspec.Struct, frozen=True, gc=False):
    """A core/v1 Event; on an ``ERROR`` watch event, a ``Status`` (``code`` set)."""

    metadata: Meta = Meta()
    involvedObject: InvolvedObject = InvolvedObject()
    reason: str | None = None
    message: str | None = None
    type: str | None = None
    count: int | None = None
    series: Series | None = None
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    eventTime: str | None = None
    code: int | None = None


class Waiting(msgspec.Struct, frozen=True, gc=False):
    reason: str = ""
    message: str = ""


class Terminated(msgspec.Struct, frozen=True, gc=False):
    reason: str = ""
    message: str = ""
    exitCode: int = 0
    signal: int = 0
    startedAt: str | None = None
    finishedAt: str | None = None


class ContainerState(msgspec.Struct, frozen=True, gc=False):
    waiting: Waiting | None = None
    terminated: Terminated | None = None


class ContainerStatus(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    ready: bool = False
    restartCount: int = 0
    state: ContainerState = ContainerState()
    lastState: ContainerState = ContainerState()


class Condition(msgspec.Struct, frozen=True, gc=False):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""
    lastTransitionTime: str | None = None


class PodStatus(msgspec.Struct, frozen=True, gc=False):
    phase: str = ""
    reason: str = ""
    message: str = ""
    conditions: list[Condition] | None = None
    initContainerStatuses: list[ContainerStatus] | None = None
    containerStatuses: list[ContainerStatus] | None = None


class Pod(msgspec.Struct, frozen=True, gc=False):
    metadata: Meta = Meta()
    status: PodStatus = PodStatus()


class EventWatchEvent(msgspec.Struct, frozen=True, gc=False):
    type: str
    object: KubeEvent


class PodWatchEvent(msgspec.Struct, frozen=True, gc=False):
    type: str
    object: Pod


class Status(msgspec.Struct, frozen=True, gc=False):
    """The object of an ``ERROR`` watch event (``code`` 410 means: relist)."""

    code: int = 0
    reason: str = ""
    message: str = ""


class StatusWatchEvent(msgspec.Struct, frozen=True, gc=False):
    type: str
    object: Status


class ListMeta(msgspec.Struct, frozen=True, gc=False):
    resourceVersion: str = ""
    # NB: named with a trailing underscore: ``continue`` is a Python keyword.
    continue_: str | None = msgspec.field(default=None, name="continue")
    remainingItemCount: int | None = None


class EventList(msgspec.Struct, frozen=True, gc=False):
    metadata: ListMeta
    items: list[KubeEvent] = []


class PodList(msgspec.Struct, frozen=True, gc=False):
    metadata: ListMeta
    items: list[Pod] = []
