"""Write the OpenAPI schema to a file: ``python -m aetherius.api.schema_dump docs/openapi.json``.

The schema does not depend on the store's contents, so an empty in-memory SQLite store and no bus
are enough to build the app it comes from.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from aetherius.config import load_settings


async def build_schema() -> dict[str, Any]:
    from aetherius.api.app import create_app
    from aetherius.store import Store

    store = await Store.open("sqlite:///:memory:", migrate_schema=True)
    try:
        app = create_app(settings=load_settings(env={}), store=store, bus=_NoBus())
        return app.openapi()
    finally:
        await store.close()


class _NoBus:
    async def publish(self, signals: Any) -> None:
        raise RuntimeError("schema only")

    async def pull(self, *, durable: str, batch: int, timeout: float) -> list[Any]:
        return []

    async def close(self) -> None:
        return None


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path("docs/openapi.json")
    schema = asyncio.run(build_schema())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
