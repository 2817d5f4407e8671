"""Build an investigator from settings: the API key from a file or the environment; the cache and
the daily budget shared through Redis where configured, else through the store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aetherius.config import ConfigError, ReasoningSettings, Settings
from aetherius.gateway import AuditSink, ExecutionGateway, live_gateway
from aetherius.kube import KubeClient
from aetherius.reasoning.budget import (
    AnswerCache,
    DailyBudget,
    MemoryCache,
    RedisBudget,
    RedisCache,
    StoreBudget,
    StoreCache,
    TokenBudget,
)
from aetherius.reasoning.client import ChatClient
from aetherius.reasoning.investigator import Investigator
from aetherius.reasoning.privacy import load_key
from aetherius.reasoning.service import GatewayFor, Investigations
from aetherius.store import Store
from aetherius.store.engine import default_sqlite_path

__all__ = ["api_key", "build_investigations", "build_investigator", "investigations_from_settings"]


def api_key(settings: ReasoningSettings) -> str:
    """The key (empty for endpoints without one, e.g. a local Ollama); errors name key and file."""
    if settings.api_key_file is not None:
        try:
            return settings.api_key_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"reasoning.api_key_file: cannot read {settings.api_key_file}: {exc.strerror}"
            ) from None
    return os.environ.get(settings.api_key_env, "")


def build_investigator(
    settings: ReasoningSettings,
    *,
    data_dir: Path,
    cache: AnswerCache | None = None,
    budget: TokenBudget | None = None,
    stream: bool = True,
) -> Investigator:
    if not settings.base_url or not settings.model:
        raise ConfigError(
            "reasoning.base_url and reasoning.model are required when reasoning.enabled is true"
        )
    client = ChatClient(
        base_url=settings.base_url,
        model=settings.model,
        api_key=api_key(settings),
        connect_timeout=settings.connect_timeout.total_seconds(),
        read_timeout=settings.read_timeout.total_seconds(),
        retry_budget=settings.retry_budget_seconds,
    )
    return Investigator(
        client=client,
        settings=settings,
        key=load_key(settings.pseudonym_key_file, data_dir=data_dir),
        cache=cache if cache is not None else MemoryCache(),
        budget=budget if budget is not None else DailyBudget(settings.daily_tokens_per_cluster),
        stream=stream,
    )


def build_investigations(
    settings: ReasoningSettings,
    *,
    store: Store,
    gateway_for: GatewayFor | None,
    data_dir: Path,
    redis: Any = None,
    max_concurrent: int = 4,
) -> Investigations:
    """The investigations of one process; without ``enabled`` they refuse to start, saying why.

    ``redis`` (an asyncio client) shares the answer cache and the daily budget between replicas,
    the store standing in while Redis does not answer; without it the store does
    (``reasoning_answers``, ``reasoning_spend``).
    """
    investigator = None
    if settings.enabled:
        limit = settings.daily_tokens_per_cluster
        investigator = build_investigator(
            settings,
            data_dir=data_dir,
            cache=RedisCache(redis, fallback=StoreCache(store)) if redis is not None else StoreCache(store),
            budget=(
                RedisBudget(redis, limit, fallback=StoreBudget(store, limit))
                if redis is not None
                else StoreBudget(store, limit)
            ),
        )
    return Investigations(
        store=store,
        settings=settings,
        investigator=investigator,
        gateway_for=gateway_for,
        max_concurrent=max_concurrent,
        redis=redis,
    )


def investigations_from_settings(
    settings: Settings, *, store: Store, kube: KubeClient | None, max_concurrent: int = 4
) -> Investigations:
    """What ``aetherius run``, ``api`` and ``orchestrator`` use: reads through the live gateway of
    the process' cluster client (none: investigations refuse, saying so), the cache and budget in
    Redis when ``redis.url`` is set, the pseudonym key beside the default SQLite file."""
    gateway_for: GatewayFor | None = None
    if kube is not None:
        client = kube

        def gateway_for(cluster_id: str, audit: AuditSink) -> ExecutionGateway:
            return live_gateway(
                client,
                cluster=settings.cluster_id or cluster_id,
                audit=audit,
                secret_metadata=settings.kube.secret_metadata,
            )

    redis = None
    if settings.reasoning.enabled and settings.redis.url:
        import redis.asyncio as aioredis

        redis = aioredis.Redis.from_url(settings.redis.url, socket_connect_timeout=1.0, socket_timeout=2.0)
    return build_investigations(
        settings.reasoning,
        store=store,
        gateway_for=gateway_for,
        data_dir=default_sqlite_path().parent,
        redis=redis,
        max_concurrent=max_concurrent,
    )
