"""Where the API server is and how to authenticate: in-cluster ServiceAccount or kubeconfig.

The official client's loaders handle every kubeconfig form (tokens, client certificates, exec
plugins, refresh); we read their result into a small frozen ``Credentials`` value.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_NAMESPACE = "aetherius-system"


class CredentialsError(Exception):
    """No usable cluster credentials; the message says what was tried."""


@dataclass(frozen=True, kw_only=True)
class Credentials:
    host: str
    ssl_context: ssl.SSLContext | bool
    authorization: Callable[[], Awaitable[str | None]]
    source: str  # "in-cluster" | "kubeconfig <path> context <name>"


def in_cluster_available() -> bool:
    return (SERVICE_ACCOUNT_DIR / "token").is_file() and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def pod_namespace() -> str:
    """The namespace this pod runs in (ServiceAccount file), ``aetherius-system`` elsewhere."""
    try:
        return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or DEFAULT_NAMESPACE
    except OSError:
        return os.environ.get("POD_NAMESPACE", DEFAULT_NAMESPACE)


def _ssl_context(cfg: Any) -> ssl.SSLContext | bool:
    if not cfg.verify_ssl:
        return False
    context = (
        ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.ssl_ca_cert
        else ssl.create_default_context()
    )
    if cfg.cert_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file)
    return context


def in_cluster_credentials(directory: Path | None = None, env: dict[str, str] | None = None) -> Credentials:
    """The pod's ServiceAccount, as client-go's ``rest.InClusterConfig`` reads it: the API server at
    ``KUBERNETES_SERVICE_HOST``/``PORT``, its CA, and the token file read again on every request
    (a projected token rotates). No client library: the node agent, on every node, stays small.
    """
    folder = directory or SERVICE_ACCOUNT_DIR
    values = os.environ if env is None else env
    host, port = values.get("KUBERNETES_SERVICE_HOST", ""), values.get("KUBERNETES_SERVICE_PORT", "")
    token_file, ca_file = folder / "token", folder / "ca.crt"
    if not host or not port:
        raise CredentialsError(
            "cannot load cluster credentials: not in a cluster (KUBERNETES_SERVICE_HOST/PORT are not set)"
        )
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
        token_file.read_text(encoding="utf-8")
    except (OSError, ssl.SSLError) as exc:
        raise CredentialsError(f"cannot load cluster credentials: {exc}") from None
    address = f"[{host}]" if ":" in host else host

    async def authorization() -> str | None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return f"Bearer {token}" if token else None

    return Credentials(
        host=f"https://{address}:{port}",
        ssl_context=context,
        authorization=authorization,
        source="in-cluster",
    )


def kubeconfig_files(kubeconfig: Path | str | None) -> list[Path]:
    """The kubeconfig files to merge: the named one(s), else ``$KUBECONFIG``, else ``~/.kube/config``.

    Like kubectl, a value may be a list joined by the OS path separator (``a.yaml:b.yaml``); every
    caller goes through here so no one takes such a list for one file name.
    """
    value = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]


async def load_credentials(
    *, in_cluster: bool = False, kubeconfig: Path | None = None, context: str | None = None
) -> Credentials:
    """In-cluster when asked or when the token file exists (and no kubeconfig was named)."""
    use_in_cluster = in_cluster or (
        kubeconfig is None and not os.environ.get("KUBECONFIG") and in_cluster_available()
    )
    if use_in_cluster:
        return in_cluster_credentials()
    from kubernetes.aio.client import Configuration
    from kubernetes.aio.config import ConfigException, load_kube_config

    cfg = Configuration()
    files = kubeconfig_files(kubeconfig)
    if not any(f.is_file() for f in files):
        raise CredentialsError(
            f"no kubeconfig at {', '.join(map(str, files))} and not running in a cluster "
            "(pass --kubeconfig, set KUBECONFIG, or use --in-cluster inside a pod)"
        )
    path = os.pathsep.join(map(str, files))
    source = f"kubeconfig {path}" + (f" context {context}" if context else "")
    try:
        # NB: the official loader merges a KUBECONFIG list itself (first file wins per key).
        await load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=cfg
        )
    except ConfigException as exc:
        raise CredentialsError(f"cannot load cluster credentials: {exc}") from None
    except OSError as exc:
        raise CredentialsError(f"cannot load cluster credentials: {exc}") from None

    async def authorization() -> str | None:
        token: str | None = await cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token is None and cfg.username:
            return str(cfg.get_basic_auth_token())
        return token

    return Credentials(
        host=cfg.host.rstrip("/"), ssl_context=_ssl_context(cfg), authorization=authorization, source=source
    )
