"""``aetherius api`` serves, prints its address, and prints the first admin token exactly once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.services import free_port, wait_for_port


def _start(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "AETHERIUS_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
        "AETHERIUS_BUS_URL": "memory://",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "aetherius", "api", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.terminate()
    out, err = process.communicate(timeout=20)
    return out, err


def test_api_command_first_token_then_none(tmp_path: Path) -> None:
    port = free_port()
    first = _start(tmp_path, port)
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200
    finally:
        out, err = _stop(first)
    assert f"http://127.0.0.1:{port}" in out
    token_lines = [ln for ln in out.splitlines() if ln.startswith("First admin token")]
    assert len(token_lines) == 1
    secret = token_lines[0].rsplit(" ", 1)[-1]
    assert secret.startswith("aeth_") and secret not in err  # never in the logs

    second = _start(tmp_path, port)
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        me = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"}
        )
        assert me.status_code == 200 and me.json()[0]["role"] == "admin"
    finally:
        out, _ = _stop(second)
    assert "First admin token" not in out


def test_api_command_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "app.yaml"
    bad.write_text("api:\n  port: eighty\n")
    result = subprocess.run(
        [sys.executable, "-m", "aetherius", "api", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "api.port" in result.stderr and "Traceback" not in result.stderr


def test_api_command_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _start(tmp_path, port)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert f"could not listen on 127.0.0.1:{port} (is the port in use?)" in err
    assert "Traceback" not in out + err
