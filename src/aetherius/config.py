"""One validated settings model for every role.

Two files: ``watcher.yaml`` (what to watch and filter) and
``app.yaml`` (logging, message bus, metrics, health), both mounted from the ``aetherius-config``
ConfigMap into one directory. Later sections (database, redis, api…) live in ``app.yaml`` too.

Sources, lowest precedence first: the files, then the environment (``CLUSTER_ID``, ``LOG_LEVEL``,
``AETHERIUS_<SECTION>__<KEY>`` and a few documented shortcuts), then command-line flags. Every
value remembers where it came from, so a bad value is reported as one line naming the key and the
file (or variable, or flag) that set it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

SEVERITIES = ("info", "warning", "critical")
Severity = Literal["info", "warning", "critical"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """Parse Go-style durations (``2s``, ``30m``, ``1h30m``) and plain seconds.

    Durations are written the way Go writes them (``30m``, ``1h30m``); a bare number means seconds.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return timedelta(seconds=float(text))
        pos, total = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos == len(text) and text:
            return timedelta(seconds=total)
    raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
# A JetStream domain as the leaf mode names one (``fleet.leaf_domain``, ``cluster add --leaf-domain``).
LEAF_DOMAIN = re.compile(r"[A-Za-z0-9_-]{1,63}")


def _normalize_severity(value: object) -> object:
    # NB: configurations write Kubernetes Event types ("Warning", "Normal"); map them onto our scale.
    if isinstance(value, str):
        lowered = value.strip().lower()
        return {"normal": "info"}.get(lowered, lowered)
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _warning_only() -> list[Literal["Normal", "Warning"]]:
    return ["Warning"]


class WatcherSettings(_Section):
    """``watcher.yaml``: what the Watcher lists and watches, and which Signals it keeps."""

    namespaces: list[str] = Field(default_factory=list, description="empty means every namespace")
    resync_period: Duration = Field(
        default=timedelta(minutes=30),
        description="relist after this long (at the end of the watch then open), 0 never",
    )
    event_types: list[Literal["Normal", "Warning"]] = Field(default_factory=_warning_only)
    reason_filters: list[str] = Field(
        default_factory=list, description="Signal reasons to keep; empty keeps every reason"
    )
    min_severity: Annotated[Severity, BeforeValidator(_normalize_severity)] = "warning"
    worker_count: int = Field(
        default=5, ge=1, le=256, description="reflectors that may LIST at once (namespaces x resources)"
    )
    buffer_size: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Signals queued between decode and publish (back-pressure beyond)",
    )
    watch_timeout_min: Duration = timedelta(minutes=5)
    watch_timeout_max: Duration = timedelta(minutes=10)
    read_inactivity_timeout: Duration = timedelta(seconds=90)
    page_size: int = Field(default=500, ge=1, le=10_000)
    dedup_window: Duration = timedelta(hours=1)
    dedup_max_entries: int = Field(default=200_000, ge=1, le=10_000_000)
    checkpoint_interval: Duration = timedelta(seconds=2)
    heartbeat_interval: Duration = Field(
        default=timedelta(seconds=15),
        gt=timedelta(0),
        description="how often a watcher reports its health over the bus (and orchestrators read it)",
    )
    publish_batch: int = Field(default=512, ge=1, le=65_536)


class MessageBusSettings(_Section):
    url: str = "nats://127.0.0.1:4222"
    reconnect_delay: Duration = timedelta(seconds=2)
    max_reconnect_attempts: int = Field(default=10, ge=-1)
    stream: str = "AETHERIUS_SIGNALS"
    subject_prefix: str = "aetherius.signals"
    publish_window: int = Field(default=256, ge=1, le=65_536)
    publish_timeout: Duration = timedelta(seconds=10)
    duplicate_window: Duration = timedelta(hours=1)
    max_deliver: int = Field(default=5, ge=1, le=1000)
    ack_wait: Duration = timedelta(seconds=60)
    kv_bucket: str = "aetherius_state"
    max_messages: int = Field(default=1_000_000, ge=1)
    nkey_seed_env: str = Field(
        default="AETHERIUS_NATS_NKEY_SEED",
        description="central: the variable holding its NATS nkey seed (a server with per-cluster users)",
    )
    nkey_seed_file: Path | None = Field(default=None, description="central: a file holding that seed instead")
    tls_ca_file: Path | None = Field(
        default=None,
        description="CA of the NATS server's certificate (tls://, wss://); default: the system's",
    )

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        if not value.startswith(("nats://", "tls://", "ws://", "wss://", "memory://")):
            raise ValueError(
                "must be nats://host:port, tls://host:port, ws(s)://host:port (NATS over WebSocket) "
                "or memory:// (in-process bus)"
            )
        return value


class MetricsSettings(_Section):
    enabled: bool = True
    port: int = Field(default=9090, ge=0, le=65535)
    path: str = "/metrics"


class HealthSettings(_Section):
    port: int = Field(default=8080, ge=0, le=65535)
    liveness_path: str = "/health/live"
    readiness_path: str = "/health/ready"
    progress_timeout: Duration = timedelta(minutes=15)


class KubeSettings(_Section):
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    qps: float = Field(default=50.0, gt=0)
    burst: int = Field(default=100, ge=1)
    request_timeout: Duration = timedelta(seconds=30)
    secret_metadata: bool = Field(
        default=False,
        description="list Secrets metadata-only (PartialObjectMetadataList) to check references; "
        "needs 'list secrets' RBAC, which the default deployment does not grant",
    )


class ClusterSettings(_Section):
    """One cluster read from outside it (out-of-cluster mode): a kubeconfig, a context, or both.

    Several entries make one ``aetherius run``/``orchestrator`` watch and read several clusters,
    each with its own watcher, cursor and read-only gateway. ``name`` is the cluster id; without
    it the id is detected the usual way (see ``aetherius.kube.cluster_id``).
    """

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
        description="the cluster id; empty: detected from the cluster",
    )
    kubeconfig: Path | None = Field(
        default=None, description="empty: kube.kubeconfig, $KUBECONFIG, ~/.kube/config"
    )
    context: str | None = Field(
        default=None, min_length=1, description="empty: the kubeconfig's current context"
    )

    @model_validator(mode="after")
    def _names_a_cluster(self) -> ClusterSettings:
        if self.kubeconfig is None and self.context is None:
            raise ValueError("a cluster entry needs a kubeconfig, a context, or both")
        return self

    def label(self) -> str:
        """How the entry is named in messages: its name, else its kubeconfig and context."""
        where = str(self.kubeconfig) if self.kubeconfig is not None else "default kubeconfig"
        shown = f"{where} (context {self.context})" if self.context else where
        return f"{self.name}: {shown}" if self.name else shown


class DatabaseSettings(_Section):
    url: str = ""  # empty: a SQLite file under the user's data directory
    migrate_on_start: bool = True
    retention: Duration = timedelta(days=30)


NotificationEvent = Literal["new", "reopened", "escalated"]


def _all_events() -> list[NotificationEvent]:
    return ["new", "reopened", "escalated"]


class NotificationSinkSettings(_Section):
    """One place incidents are announced: a generic JSON webhook (HMAC-signed) or Slack."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    type: Literal["webhook", "slack"]
    url: str = Field(pattern=r"^https?://")
    secret: str = ""  # HMAC-SHA256 key for webhooks; prefer secret_env in a cluster
    secret_env: str = ""  # name of an environment variable holding the secret (a mounted Secret)
    events: list[NotificationEvent] = Field(default_factory=_all_events)
    min_severity: Annotated[Severity, BeforeValidator(_normalize_severity)] = "warning"

    def resolved_secret(self, env: Mapping[str, str] | None = None) -> str:
        """The HMAC key: the inline value, else the named environment variable, else empty."""
        if self.secret:
            return self.secret
        if self.secret_env:
            return (os.environ if env is None else env).get(self.secret_env, "")
        return ""


class NotificationSettings(_Section):
    sinks: list[NotificationSinkSettings] = Field(default_factory=list)
    wait_for_report: Duration = timedelta(seconds=10)  # hold a "new" notice until its report exists
    base_backoff: Duration = timedelta(seconds=1)
    max_backoff: Duration = timedelta(minutes=10)
    request_timeout: Duration = timedelta(seconds=10)

    @field_validator("sinks")
    @classmethod
    def _unique_names(cls, value: list[NotificationSinkSettings]) -> list[NotificationSinkSettings]:
        names = [sink.name for sink in value]
        if len(names) != len(set(names)):
            raise ValueError("sink names must be unique")
        return value


class KnowledgeSettings(_Section):
    runbook_dirs: list[Path] = Field(
        default_factory=list, description="the user's own runbooks (markdown), e.g. a mounted ConfigMap"
    )
    similar_incidents: int = Field(default=3, ge=0, le=20)


class RedisSettings(_Section):
    url: str = ""  # empty: cooldowns and rate limits kept in process


class OrchestratorSettings(_Section):
    """How Signals become incidents and how often an incident is diagnosed."""

    cooldown: Duration = timedelta(minutes=15)
    resolve_after: Duration = timedelta(minutes=10)
    recheck_interval: Duration = timedelta(minutes=1)
    # NB: how often a Signal is tried is ``message_bus.max_deliver``: one setting for the bus's
    # consumer and the orchestrator's dead-letter decision.
    # NB: what a replica has in hand is bounded: ``batch_size`` Signals being recorded (of them
    # ``concurrency`` lanes at once, in at most ``write_transactions`` transactions of at most
    # ``write_batch`` Signals) and ``batch_size`` stored and waiting for their diagnosis (of them
    # ``diagnosis_concurrency`` diagnosed at once), all unacked until done.
    concurrency: int = Field(default=64, ge=1, le=1000, description="lanes recording at once per replica")
    diagnosis_concurrency: int = Field(default=8, ge=1, le=1000, description="diagnoses at once per replica")
    write_batch: int = Field(default=64, ge=1, le=1000, description="Signals stored per transaction, at most")
    write_transactions: int = Field(
        default=2, ge=1, le=64, description="write transactions at once per replica"
    )
    diagnoses_per_minute: float = Field(default=60.0, gt=0, description="per cluster")
    diagnosis_burst: int = Field(default=20, ge=1)
    batch_size: int = Field(default=128, ge=1, le=10_000, description="Signals being recorded, at most")
    pull_timeout: Duration = timedelta(seconds=1)
    durable: str = "aetherius-orchestrator"


class ApiSettings(_Section):
    """``api``: the REST API, Event Gateway webhooks and dashboard (``aetherius api``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    session_secret: str = Field(
        default="", description="signs dashboard session cookies; empty: random per process"
    )
    session_ttl: Duration = timedelta(hours=12)
    secure_cookies: bool = False  # always Secure; otherwise Secure whenever the request came over TLS
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="addresses whose X-Forwarded-Proto/For are believed (uvicorn forwarded_allow_ips)",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    request_timeout: Duration = timedelta(seconds=30)
    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=60, ge=1)
    # Wrong tokens and sessions per client address: past these, 429 before any store lookup.
    auth_failures_per_minute: float = Field(default=30.0, gt=0)
    auth_failures_burst: int = Field(default=20, ge=1)
    webhook_tokens: dict[str, str] = Field(
        default_factory=dict, description="Event Gateway token per source (alertmanager, generic…)"
    )
    webhook_query_token: bool = False  # ?token= lands in access logs and browser history: opt-in
    webhook_max_alerts: int = Field(default=1000, ge=1, le=100_000)
    webhook_clusters: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list,
        max_length=1000,
        description="cluster ids a webhook may name (a `cluster` label) besides this one's; others are refused",
    )
    events_poll_interval: Duration = timedelta(seconds=1)
    events_heartbeat: Duration = timedelta(seconds=15)
    # NB: every dashboard page a person keeps open (overview, incident list, incidents) holds one
    # stream of their session's token: a handful of tabs must not make one of them go quiet.
    max_streams_per_token: int = Field(
        default=16, ge=1, le=1000, description="open event streams a token may hold"
    )


class NodeAgentSettings(_Section):
    """``node_agent``: the per-node agent (``aetherius agent --mode node``), read-only on its node."""

    node_name: str = Field(default="", description="this node (default: the NODE_NAME environment variable)")
    kubelet_url: str = Field(
        default="",
        description="the kubelet's authenticated port (default https://$NODE_IP:10250; never the read-only port)",
    )
    kubelet_token_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    kubelet_ca_file: str = Field(
        default="",
        description="CA of the kubelet's serving certificate (default: the ServiceAccount's ca.crt)",
    )
    kubelet_insecure_skip_tls_verify: bool = Field(
        default=False, description="for kubelets with self-signed serving certificates (warned at start)"
    )
    poll_interval: Duration = Field(default=timedelta(seconds=10), gt=timedelta(0))
    request_timeout: Duration = Field(default=timedelta(seconds=5), gt=timedelta(0))
    trend_window: Duration = Field(
        default=timedelta(minutes=5), gt=timedelta(0), description="samples a falling trend is fitted over"
    )
    warn_horizon: Duration = Field(
        default=timedelta(minutes=15),
        gt=timedelta(0),
        description="warn when a threshold is this close in time",
    )
    warn_ratio: float = Field(
        default=2.0,
        gt=1.0,
        le=100.0,
        description="warn when what is left is under this many times the threshold",
    )
    eviction_memory_available: str = Field(
        default="100Mi", description="the kubelet's hard eviction threshold"
    )
    eviction_nodefs_available: str = "10%"
    eviction_nodefs_inodes_free: str = "5%"
    eviction_imagefs_available: str = "15%"
    eviction_pid_available: str = "5%"
    top_pods: int = Field(default=3, ge=0, le=20)
    throttled_ratio: float = Field(
        default=0.5, gt=0, le=1, description="share of CPU periods throttled that makes a container throttled"
    )
    throttled_polls: int = Field(default=3, ge=1, le=100, description="polls in a row at that share")
    volume_full_percent: float = Field(
        default=10.0,
        gt=0,
        lt=100,
        description="a claim's volume with this little space or inodes left is reported",
    )
    kernel_logs: list[str] = Field(
        default_factory=lambda: ["/var/log/kern.log"],
        description="kernel log files read (read-only hostPath); /dev/kmsg only if listed (needs CAP_SYSLOG)",
    )
    boot_id_file: str = "/proc/sys/kernel/random/boot_id"
    lookback: Duration = Field(
        default=timedelta(minutes=10), description="kernel records older than this at start are skipped"
    )
    patterns_file: str = Field(
        default="", description="extra kernel patterns (YAML), added to the shipped table"
    )
    queue_size: int = Field(
        default=1000, ge=1, le=1_000_000, description="kernel records held before publishing"
    )
    max_line_bytes: int = Field(default=4096, ge=256, le=1_048_576)
    reader_stall: Duration = Field(
        default=timedelta(minutes=2),
        gt=timedelta(0),
        description="a reader silent this long fails /health/live",
    )


class ReasoningSettings(_Section):
    """``reasoning``: the LLM investigator (docs/reasoning.md). Off by default: rules answer first."""

    enabled: bool = False
    base_url: str = Field(
        default="", description="an OpenAI-compatible endpoint, e.g. https://api.openai.com/v1"
    )
    model: str = ""
    api_key_file: Path | None = None  # preferred in a cluster: a mounted Secret
    api_key_env: str = "AETHERIUS_REASONING_API_KEY"  # name of the environment variable holding the key
    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=120)
    max_steps: int = Field(default=12, ge=1, le=100)
    max_input_tokens: int = Field(default=200_000, ge=1000)
    max_output_tokens: int = Field(default=8_000, ge=100)
    context_tokens: int = Field(default=64_000, ge=1000, description="the model's context window")
    per_tool_output_chars: int = Field(default=8_000, ge=200, le=1_000_000)
    wall_clock_seconds: float = Field(default=300.0, gt=0)
    daily_tokens_per_cluster: int = Field(default=2_000_000, ge=0)
    retry_budget_seconds: float = Field(default=30.0, ge=0, description="longest Retry-After honoured")
    price_per_input_token: float = Field(default=0.0, ge=0)
    price_per_output_token: float = Field(default=0.0, ge=0)
    pseudonymize: bool = True
    pseudonym_key_file: Path | None = None  # empty: generated once and kept in the user's data directory
    widen_scope: bool = False  # reads beyond the incident's namespace and nodes
    auto_on_unknown: bool = False  # investigate when the rules' answer is Unknown


class FleetSettings(_Section):
    """``fleet``: many clusters. ``central`` reads member clusters through their edge agents;
    ``edge`` is the agent in a member cluster (``aetherius agent --mode edge``)."""

    mode: Literal["in-cluster", "central", "edge"] = "in-cluster"
    central_endpoint: str = Field(
        default="",
        description="edge: central NATS, nats:// or tls:// (or wss:// where only 443 leaves the cluster); "
        "in leaf mode, the member's own leaf nats-server",
    )
    token_env: str = Field(
        default="AGENT_TOKEN", description="edge: the variable holding the cluster's token"
    )
    token_file: Path | None = Field(default=None, description="edge: a file holding the token instead")
    gateway_timeout: Duration = Field(default=timedelta(seconds=10), gt=timedelta(0))
    ping_timeout: Duration = Field(
        default=timedelta(milliseconds=500), gt=timedelta(0), description="is the agent there at all"
    )
    gateway_concurrency: int = Field(default=4, ge=1, le=64, description="edge: reads answered at once")
    leaf_domain: str = Field(
        default="",
        description="edge, leaf mode: the JetStream domain of the member cluster's own leaf nats-server "
        "(central_endpoint is then that server); the agent's Signals are kept there until central has them",
    )
    leaf_max_age: Duration = Field(
        default=timedelta(days=7),
        gt=timedelta(0),
        description="edge, leaf mode: how long the leaf server keeps a Signal central has not taken",
    )

    @field_validator("central_endpoint")
    @classmethod
    def _endpoint_scheme(cls, value: str) -> str:
        if value and not value.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError("must be nats://, tls://, ws:// or wss://host:port")
        return value

    @field_validator("leaf_domain")
    @classmethod
    def _domain_name(cls, value: str) -> str:
        # NB: the domain is one token of ``$JS.<domain>.API``: a dot, a wildcard or a space would
        # make central's source reach another domain's API, or none.
        if value and not LEAF_DOMAIN.fullmatch(value):
            raise ValueError(
                f"{value[:80]!r} is not a JetStream domain: 1-63 letters, digits, '-' and '_' "
                "(such as edge-<cluster>), the `jetstream { domain }` of the member's leaf nats-server"
            )
        return value


class Settings(BaseModel):
    """Everything a role reads. ``app.yaml`` keys sit at the top; ``watcher.yaml`` is ``watcher``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster_id: str | None = None
    log_level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_normalize_severity)
    ] = "info"
    # "auto": lines for a person when stderr is a terminal, JSON for a log collector otherwise.
    log_format: Literal["auto", "json", "console"] = "auto"
    message_bus: MessageBusSettings = MessageBusSettings()
    metrics: MetricsSettings = MetricsSettings()
    health: HealthSettings = HealthSettings()
    kube: KubeSettings = KubeSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    orchestrator: OrchestratorSettings = OrchestratorSettings()
    api: ApiSettings = ApiSettings()
    notifications: NotificationSettings = NotificationSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    reasoning: ReasoningSettings = ReasoningSettings()
    watcher: WatcherSettings = WatcherSettings()
    node_agent: NodeAgentSettings = NodeAgentSettings()
    fleet: FleetSettings = FleetSettings()
    clusters: list[ClusterSettings] = Field(
        default_factory=list,
        max_length=100,
        description="out-of-cluster mode: the clusters one process watches (empty: the kube section's one)",
    )

    @field_validator("clusters")
    @classmethod
    def _distinct_clusters(cls, value: list[ClusterSettings], info: ValidationInfo) -> list[ClusterSettings]:
        # NB: one configured id for several clusters would merge them into one; each names its own.
        if info.data.get("cluster_id") and len(value) > 1:
            raise ValueError(
                "cluster_id (CLUSTER_ID) names one cluster; with several, give each entry a name"
            )
        kube = info.data.get("kube")
        if value and kube is not None and kube.in_cluster:
            raise ValueError("in-cluster mode reads its own cluster only: drop clusters or --in-cluster")
        names = [c.name for c in value if c.name]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"cluster names must be unique: {', '.join(repeated)} given twice")
        places = [(c.kubeconfig, c.context) for c in value]
        for index, place in enumerate(places):
            if place in places[:index]:
                raise ValueError(
                    f"entry {index} repeats entry {places.index(place)} (same kubeconfig and context)"
                )
        return value


class ConfigError(Exception):
    """A configuration problem, already phrased for a person: key, source, what is wrong."""


# Environment shortcuts the manifests and the docs name, mapped onto settings paths.
ENV_SHORTCUTS: Mapping[str, tuple[str, ...]] = {
    "CLUSTER_ID": ("cluster_id",),
    "LOG_LEVEL": ("log_level",),
    "AETHERIUS_DATABASE_URL": ("database", "url"),
    "AETHERIUS_REDIS_URL": ("redis", "url"),
    "AETHERIUS_BUS_URL": ("message_bus", "url"),
    "CENTRAL_ENDPOINT": ("fleet", "central_endpoint"),
    "KUBECONFIG": ("kube", "kubeconfig"),
    "AETHERIUS_SESSION_SECRET": ("api", "session_secret"),
}
ENV_PREFIX = "AETHERIUS_"
_WATCHER_FILE_NAMES = {"watcher.yaml", "watcher.yml"}
_APP_FILE_NAMES = {"app.yaml", "app.yml"}


class _Layered:
    """A nested dict built from several sources, remembering the source of every leaf."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origin: dict[tuple[str, ...], str] = {}

    def merge(self, values: Mapping[str, Any], *, source: str, prefix: tuple[str, ...] = ()) -> None:
        target = self.data
        for key in prefix:
            target = target.setdefault(key, {})
        self._merge_into(target, values, source=source, path=prefix)

    def _merge_into(
        self, target: dict[str, Any], values: Mapping[str, Any], *, source: str, path: tuple[str, ...]
    ) -> None:
        for key, value in values.items():
            key_path = (*path, str(key))
            if isinstance(value, Mapping) and isinstance(target.get(key), dict):
                self._merge_into(target[key], value, source=source, path=key_path)
            else:
                target[str(key)] = dict(value) if isinstance(value, Mapping) else value
            self.origin[key_path] = source

    def set(self, path: tuple[str, ...], value: Any, *, source: str) -> None:
        target = self.data
        for key in path[:-1]:
            existing = target.get(key)
            if not isinstance(existing, dict):
                existing = {}
                target[key] = existing
            target = existing
        target[path[-1]] = value
        self.origin[path] = source

    def source_of(self, path: tuple[str, ...]) -> str:
        for end in range(len(path), 0, -1):
            if path[:end] in self.origin:
                return self.origin[path[:end]]
        return "defaults"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config error: {path}: cannot read: {exc.strerror or exc}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"config error: {path}:{where}: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config error: {path}: expected a mapping of keys, got {type(loaded).__name__}")
    return loaded


def _config_files(paths: list[Path]) -> list[Path]:
    """Expand ``--config`` values: a directory means its watcher.yaml and app.yaml.

    NB: a deployment may pass ``--config=/etc/aetherius/watcher.yaml`` while the ConfigMap mounts both
    files beside each other, so naming one of the pair loads its sibling too.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            candidates = [path / "app.yaml", path / "watcher.yaml"]
            files.extend(c for c in candidates if c.is_file())
            continue
        if not path.exists():
            raise ConfigError(f"config error: {path}: no such file")
        if path.name in _WATCHER_FILE_NAMES | _APP_FILE_NAMES:
            sibling_name = "app.yaml" if path.name in _WATCHER_FILE_NAMES else "watcher.yaml"
            sibling = path.with_name(sibling_name)
            if sibling.is_file() and sibling not in files and sibling not in paths:
                files.append(sibling)
        files.append(path)
    return files


def _env_layers(env: Mapping[str, str]) -> list[tuple[tuple[str, ...], str, str]]:
    found: list[tuple[tuple[str, ...], str, str]] = []
    for name, path in ENV_SHORTCUTS.items():
        if env.get(name):
            found.append((path, env[name], f"environment {name}"))
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_SHORTCUTS or "__" not in name:
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
        if all(parts):
            found.append((parts, _env_value(value), f"environment {name}"))
    return found


def _env_value(value: str) -> Any:
    # Lists and mappings may be given as YAML/JSON flow text: AETHERIUS_WATCHER__NAMESPACES='[a, b]'.
    stripped = value.strip()
    if stripped.startswith(("[", "{")):
        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError:
            return value
    return value


def load_settings(
    *,
    config_paths: list[Path] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str, ...], Any] | None = None,
) -> Settings:
    """Build the settings from files, environment and flags; raise ``ConfigError`` on any problem."""
    layered = _Layered()
    for path in _config_files(list(config_paths or [])):
        values = _read_yaml(path)
        if path.name in _WATCHER_FILE_NAMES:
            layered.merge(values, source=str(path), prefix=("watcher",))
        else:
            layered.merge(values, source=str(path))
    for key_path, value, source in _env_layers(os.environ if env is None else env):
        layered.set(key_path, value, source=source)
    for key_path, value in (overrides or {}).items():
        if value is not None:
            layered.set(key_path, value, source=f"flag --{key_path[-1].replace('_', '-')}")
    try:
        return Settings.model_validate(layered.data)
    except ValidationError as exc:
        # One line a mistake, all of them: fixing a config one error per restart wastes an evening.
        raise ConfigError("\n".join(_describe(error, layered) for error in exc.errors())) from None


def _describe(error: Any, layered: _Layered) -> str:
    """``config error: <file or env var>: <key>: <what is wrong>`` for one validation error."""
    loc = tuple(str(p) for p in error["loc"])
    key = ".".join(loc) or "(top level)"
    if loc and loc[0] == "watcher" and layered.source_of(loc).endswith(tuple(_WATCHER_FILE_NAMES)):
        key = ".".join(loc[1:])
    message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
    return f"config error: {layered.source_of(loc)}: {key}: {message}"
