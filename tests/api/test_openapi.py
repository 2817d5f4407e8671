"""The committed schema (docs/openapi.json) is the one the app serves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


async def test_committed_schema_is_current(client: httpx.AsyncClient) -> None:
    served = (await client.get("/api/v1/openapi.json")).json()
    committed = json.loads(SCHEMA.read_text())
    assert committed == served, "docs/openapi.json is stale: run `python -m aetherius.api.schema_dump docs/openapi.json`"
    assert "/webhooks/alertmanager" in served["paths"] and "ProblemDocument" in served["components"]["schemas"]
