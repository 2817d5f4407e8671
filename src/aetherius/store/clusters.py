"""Clusters: the ones Aetherius watches, how each was identified, and its watcher's health."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from aetherius.store.base import StoreBase, to_record
from aetherius.store.engine import NotFound
from aetherius.store.models import ClusterRow
from aetherius.store.records import Cluster


class ClusterOps(StoreBase):
    async def upsert_cluster(
        self,
        cluster_id: str,
        *,
        name: str | None = None,
        detected_by: str = "config",
        watcher_health: dict[str, Any] | None = None,
    ) -> Cluster:
        """Note that the cluster is alive (last seen now), and its watcher health when given."""
        now = self.clock()
        table = ClusterRow.__table__
        values: dict[str, Any] = {
            "id": cluster_id,
            "name": name or cluster_id,
            "detected_by": detected_by,
            "first_seen": now,
            "last_seen": now,
            "watcher_health": watcher_health or {},
        }
        updates: dict[str, Any] = {"last_seen": now, "detected_by": detected_by}
        if name is not None:
            updates["name"] = name
        if watcher_health is not None:
            updates["watcher_health"] = watcher_health
        statement = (
            self.insert(table)
            .values(**values)
            .on_conflict_do_update(index_elements=["id"], set_=updates)
            .returning(*table.c)
        )
        async with self.sessions.begin() as session:
            row = (await session.execute(statement)).one()
            return to_record(Cluster, row)

    async def list_clusters(self) -> list[Cluster]:
        async with self.sessions() as session:
            rows = (await session.execute(select(ClusterRow).order_by(ClusterRow.id))).scalars()
            return [to_record(Cluster, row) for row in rows]

    async def get_cluster(self, cluster_id: str) -> Cluster:
        async with self.sessions() as session:
            row = await session.get(ClusterRow, cluster_id)
            if row is None:
                raise NotFound(f"cluster {cluster_id!r} is not known")
            return to_record(Cluster, row)
