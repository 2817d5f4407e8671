"""``aetherius demo`` as a real subprocess, for the browser test and the screenshot script.

The demo prints the dashboard address and the first admin token once on stdout; this module
reads them (bounded in time), keeps draining stdout so the demo never blocks on a full pipe,
and stops the demo with SIGTERM as a person's Ctrl-C or a service manager would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import free_port

ADDRESS = re.compile(r"^Aetherius dashboard: (http://\S+)$")
TOKEN = re.compile(r"^First admin token \(shown once, store it now\): (\S+)$")


class DemoFailed(AssertionError):
    """The demo did not start, print what it should, or stop cleanly."""


@dataclass
class Demo:
    process: asyncio.subprocess.Process
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    url: str = ""
    token: str = ""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def stderr(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")[-4000:]
        return ""

    def explain(self, problem: str) -> DemoFailed:
        out = "\n".join(self.lines[-30:])
        return DemoFailed(f"{problem}\n--- demo stdout ---\n{out}\n--- demo stderr ---\n{self.stderr()}")

    async def _drain(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if match := ADDRESS.match(line):
                self.url = match.group(1)
            if match := TOKEN.match(line):
                self.token = match.group(1)
            self._changed.set()
        self._changed.set()

    async def wait_started(self, *, timeout: float) -> None:
        """Until both the address and the token were printed (or the demo died)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.url and self.token):
            if self.process.returncode is not None:
                raise self.explain(f"the demo exited with {self.process.returncode} before it was ready")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self.explain(f"the demo printed no dashboard address and token within {timeout}s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))

    async def stop(self, *, timeout: float) -> int:
        """SIGTERM, then the exit code (killed and reported if it does not stop in time)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise self.explain(f"the demo did not exit within {timeout}s of SIGTERM") from None


@contextlib.asynccontextmanager
async def running_demo(tmp: Path, *, speed: float = 10.0, start_timeout: float = 30.0) -> AsyncIterator[Demo]:
    """Start ``aetherius demo`` on a free port with its data under ``tmp``; always stop it."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp / "data"), "PYTHONUNBUFFERED": "1"}
    stderr_path = tmp / "demo.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aetherius",
            "demo",
            "--port",
            str(free_port()),
            "--speed",
            str(speed),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=tmp,
        )
    demo = Demo(process=process, stderr_path=stderr_path)
    drain = asyncio.create_task(demo._drain())
    try:
        await demo.wait_started(timeout=start_timeout)
        yield demo
    finally:
        if process.returncode is None:
            with contextlib.suppress(DemoFailed):
                await demo.stop(timeout=15)
        await asyncio.wait_for(drain, timeout=5)
