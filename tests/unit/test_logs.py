"""Log lines for a person on a terminal, JSON for a collector everywhere else."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

SCRIPT = (
    "from aetherius.logs import configure_logging, get_logger\n"
    "configure_logging(role='run')\n"
    "get_logger('t').info('dashboard ready', url='http://127.0.0.1:8080')\n"
)


def test_logs_are_json_lines_when_stderr_is_not_a_terminal() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    line = json.loads(result.stderr.strip())
    assert (line["event"], line["url"], line["role"]) == ("dashboard ready", "http://127.0.0.1:8080", "run")


def test_logs_are_for_a_person_when_stderr_is_a_terminal() -> None:
    leader, follower = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-c", SCRIPT], stderr=follower, stdout=subprocess.DEVNULL, check=True, timeout=60
        )
        assert process.returncode == 0
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    text = b"".join(chunks).decode()
    assert "dashboard ready" in text and "http://127.0.0.1:8080" in text
    assert not text.lstrip().startswith("{"), text
