"""A crash loop's summary counts restarts only once there are some: in its first back-off a
container has crashed once and not restarted yet, and "restarts in a loop (0 restarts)" reads as
a contradiction."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetherius.diagnosis import diagnose
from aetherius.gateway import snapshot_gateway
from tests.diagnosis.test_secret_refs import _pod, _write


@pytest.mark.parametrize(
    ("restarts", "said"), [(0, "restarts in a loop."), (3, "restarts in a loop (3 restarts).")]
)
async def test_the_restart_count_is_said_once_there_is_one(tmp_path: Path, restarts: int, said: str) -> None:
    status = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "api",
                "ready": False,
                "restartCount": restarts,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting"}},
                "lastState": {
                    "terminated": {"reason": "Error", "exitCode": 1, "finishedAt": "2026-11-30T09:59:00Z"}
                },
            }
        ],
    }
    spec = {"containers": [{"name": "api", "image": "shop/api:1.0"}]}
    path = _write(tmp_path / "snapshot.yaml", [_pod("api-1", "u-1", spec=spec, status=status)])
    result = await diagnose(snapshot_gateway(path))
    [loop] = [f for f in result.findings if f.reason == "CrashLoopBackOff"]
    assert loop.summary.endswith(said), loop.summary
    assert "(0 restarts)" not in loop.summary
