"""Kubeconfig loading: the standard ``KUBECONFIG=a:b`` list form, merged as kubectl merges it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from aetherius.config import load_settings
from aetherius.kube import KubeClient
from aetherius.kube.credentials import CredentialsError, load_credentials
from aetherius.sim import SimCluster


def _second_context(path: Path, *, name: str, server: str) -> None:
    """A kubeconfig of its own for context ``name`` (another file, as a second cluster would be)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": name, "cluster": {"server": server}}],
                "users": [{"name": name, "user": {"token": "other"}}],
                "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            }
        )
    )


async def test_a_kubeconfig_list_in_the_environment_is_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SimCluster() as sim:
        first = sim.write_kubeconfig(tmp_path / "a.yaml")
        _second_context(tmp_path / "b.yaml", name="other", server="https://127.0.0.1:1")
        missing = tmp_path / "absent.yaml"  # kubectl skips list entries that do not exist
        monkeypatch.setenv("KUBECONFIG", os.pathsep.join(map(str, (missing, first, tmp_path / "b.yaml"))))

        # The first file's current-context is used; the second file's context is there to choose.
        async with KubeClient(credentials=await load_credentials()) as client:
            assert (await client.get_json("/api/v1/namespaces"))["kind"] == "NamespaceList"
        other = await load_credentials(context="other")
        assert other.host == "https://127.0.0.1:1"

        # The settings model carries the same list to the same loader.
        settings = load_settings(env=dict(os.environ))
        credentials = await load_credentials(kubeconfig=settings.kube.kubeconfig, context="other")
        assert credentials.host == "https://127.0.0.1:1"


async def test_a_kubeconfig_list_of_missing_files_names_each_file(tmp_path: Path) -> None:
    value = os.pathsep.join(str(tmp_path / name) for name in ("a.yaml", "b.yaml"))
    with pytest.raises(CredentialsError) as caught:
        await load_credentials(kubeconfig=Path(value))
    assert f"{tmp_path / 'a.yaml'}, {tmp_path / 'b.yaml'}" in str(caught.value)


async def test_in_cluster_credentials_are_the_service_account_s(tmp_path: Path) -> None:
    """As client-go reads them: host and port from the environment, the CA, the token read on
    every request (a projected token rotates), IPv6 hosts bracketed; what is missing is said."""
    import ssl

    from aetherius.kube.credentials import CredentialsError, in_cluster_credentials
    from aetherius.sim.node_stats import self_signed_certificate

    cert, _ = self_signed_certificate(tmp_path)
    (tmp_path / "ca.crt").write_bytes(cert.read_bytes())
    (tmp_path / "token").write_text("first\n")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    credentials = in_cluster_credentials(tmp_path, env)
    assert credentials.host == "https://[fd00::1]:443" and credentials.source == "in-cluster"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert await credentials.authorization() == "Bearer first"
    (tmp_path / "token").write_text("rotated")
    assert await credentials.authorization() == "Bearer rotated"
    with pytest.raises(CredentialsError, match="KUBERNETES_SERVICE_HOST"):
        in_cluster_credentials(tmp_path, {})
    (tmp_path / "ca.crt").write_text("not a certificate")
    with pytest.raises(CredentialsError, match="cannot load cluster credentials"):
        in_cluster_credentials(tmp_path, env)
