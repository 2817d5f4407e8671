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


async def load_credentials(
    *, in_cluster: bool = False, kubeconfig: Path | None = None, context: str | None = None
) -> Credentials:
    """In-cluster when asked or when the token file exists (and no kubeconfig was named)."""
    from kubernetes.aio.client import Configuration
    from kubernetes.aio.config import ConfigException, load_incluster_config, load_kube_config

    cfg = Configuration()
    use_in_cluster = in_cluster or (
        kubeconfig is None and not os.environ.get("KUBECONFIG") and in_cluster_available()
    )
    try:
        if use_in_cluster:
            load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            source = "in-cluster"
        else:
            path = kubeconfig or Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0])
            path = path.expanduser()
            if not path.is_file():
                raise CredentialsError(
                    f"no kubeconfig at {path} and not running in a cluster "
                    "(pass --kubeconfig, set KUBECONFIG, or use --in-cluster inside a pod)"
                )
            await load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(path), context=context, client_configuration=cfg
            )
            source = f"kubeconfig {path}" + (f" context {context}" if context else "")
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
