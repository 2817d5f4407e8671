"""A process held to a CPU limit the way Kubernetes holds a container: a cgroup v1 ``cpu`` quota.

``limit_cpu(pid, cores=0.25)`` puts ``pid`` in a cgroup of its own with ``cfs_quota_us`` =
cores × ``cfs_period_us`` (what ``resources.limits.cpu: 250m`` becomes on a node); ``release``
moves it back and removes the group. Where the controller is not writable, ``cpu_limits_work``
says why and the caller skips what needs it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000


def cpu_limits_work() -> str:
    """ "" when CPU limits can be set here, else why not."""
    if not (ROOT / "cgroup.procs").is_file():
        return f"no cgroup v1 cpu controller at {ROOT}"
    probe = ROOT / f"aetherius-probe-{secrets.token_hex(3)}"
    try:
        probe.mkdir()
        (probe / "cpu.cfs_quota_us").write_text(str(PERIOD_US // 4))
    except OSError as exc:
        return f"{ROOT} is not writable here ({exc.strerror})"
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()
    return ""


class CpuLimit:
    def __init__(self, pid: int, *, cores: float) -> None:
        self.pid = pid
        self.group = ROOT / f"aetherius-bench-{os.getpid()}-{pid}"
        self.group.mkdir()
        (self.group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (self.group / "cpu.cfs_quota_us").write_text(str(int(cores * PERIOD_US)))
        (self.group / "cgroup.procs").write_text(str(pid))

    def release(self) -> None:
        for line in (self.group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (ROOT / "cgroup.procs").write_text(line)
        with contextlib.suppress(OSError):
            self.group.rmdir()
