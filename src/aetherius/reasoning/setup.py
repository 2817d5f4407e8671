"""Build an investigator from settings: the API key from a file or the environment."""

from __future__ import annotations

import os
from pathlib import Path

from aetherius.config import ConfigError, ReasoningSettings
from aetherius.reasoning.budget import AnswerCache, DailyBudget, MemoryCache
from aetherius.reasoning.client import ChatClient
from aetherius.reasoning.investigator import Investigator
from aetherius.reasoning.privacy import load_key

__all__ = ["api_key", "build_investigator"]


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
    settings: ReasoningSettings, *, data_dir: Path, cache: AnswerCache | None = None, stream: bool = True
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
        budget=DailyBudget(settings.daily_tokens_per_cluster),
        stream=stream,
    )
