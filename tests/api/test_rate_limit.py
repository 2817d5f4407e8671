"""Per-token rate limits: one token's burst does not spend another's."""

from __future__ import annotations

import httpx

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.store import Store
from tests.api.conftest import Tokens, make_settings


async def test_burst_then_429_with_retry_after(store: Store, bus: MemoryBus, tokens: Tokens) -> None:
    app = create_app(
        settings=make_settings(rate_limit_per_second=0.5, rate_limit_burst=3), store=store, bus=bus
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        codes = [
            (await http.get("/api/v1/runbooks", headers=tokens.header("viewer"))).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        limited = await http.get("/api/v1/runbooks", headers=tokens.header("viewer"))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert (await http.get("/api/v1/runbooks", headers=tokens.header("operator"))).status_code == 200
