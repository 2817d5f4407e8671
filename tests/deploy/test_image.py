"""The image recipe, proved without Docker: the same layout built into a directory and run read-only.

Docker cannot run on our machines, so the test repeats the Dockerfile's final stage by hand: our
wheel is built with ``pip wheel``, installed with ``--no-index`` into a fresh virtualenv, the tree
is made read-only, and every role is started from it as uid 1000 with the image's environment.

NB: the trade-off. The image installs every dependency from wheels built in its first stage; doing
that here would download and build ~80 wheels, too slow and networked for CI. The fresh virtualenv
therefore gets only *our* wheel (``--no-index --no-deps``) and reaches the third-party packages of
the shared environment through a ``.pth`` line. Our code runs from the installed wheel (asserted),
so what is proved is the wheel's content, the entry point, and the read-only behaviour.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.dockerfile import recipe_problems
from tests.deploy.rendering import ROOT, Doc, of_kind, pod_specs

DOCKERFILE = ROOT / "Dockerfile"
UID = 1000


def test_the_dockerfile_keeps_its_promises() -> None:
    assert recipe_problems(DOCKERFILE.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("USER 1000", "USER root", "not USER 1000"),
        ('ENTRYPOINT ["aetherius"]', 'ENTRYPOINT ["python"]', "ENTRYPOINT"),
        ("install --no-index --find-links /wheels aetherius", "install aetherius", "from the network"),
        ("RUN pip wheel --wheel-dir /wheels .", "RUN pip install .", "pip wheel"),
        ("XDG_CACHE_HOME=/tmp/.cache", "XDG_CACHE_HOME=/home/aetherius/.cache", "outside the mounted"),
        ("PYTHONDONTWRITEBYTECODE=1", "PYTHONDONTWRITEBYTECODE=0", "PYTHONDONTWRITEBYTECODE"),
        ("python:3.11-slim-bookworm", "python:3.11", "not a slim Python 3.11"),
    ],
)
def test_the_recipe_check_catches_a_broken_dockerfile(old: str, new: str, problem: str) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert old in text
    assert any(problem in p for p in recipe_problems(text.replace(old, new)))


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert lines[lines.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]


@dataclass
class Image:
    """The image's filesystem laid out under ``root``."""

    root: Path
    venv: Path
    home: Path
    config: Path
    tmp: Path

    def env(self) -> dict[str, str]:
        # The Dockerfile's ENV, with its paths moved under root; nothing inherited but PATH's tail.
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "VIRTUAL_ENV": str(self.venv),
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "XDG_CACHE_HOME": str(self.tmp / ".cache"),
            "XDG_CONFIG_HOME": str(self.tmp / ".config"),
            "XDG_STATE_HOME": str(self.tmp / ".state"),
            "XDG_DATA_HOME": str(self.tmp / "data"),
            "LANG": "C.UTF-8",
        }

    def _drop(self) -> list[str]:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop to uid 1000"
        return [setpriv, f"--reuid={UID}", f"--regid={UID}", "--clear-groups"] if os.getuid() == 0 else []

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start a role as uid 1000 from the read-only home, its output in ``log``."""
        with log.open("wb") as out:
            return subprocess.Popen(
                [*self._drop(), *args], cwd=self.home, env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run as uid 1000 from the read-only home, like the container's process."""
        return subprocess.run(
            [*self._drop(), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _snapshot(*roots: Path) -> dict[str, tuple[int, int, int]]:
    seen: dict[str, tuple[int, int, int]] = {}
    for top in roots:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames]:
                info = os.lstat(os.path.join(dirpath, name))
                seen[os.path.join(dirpath, name)] = (info.st_size, info.st_mtime_ns, info.st_mode)
            seen[dirpath] = (0, os.lstat(dirpath).st_mtime_ns, os.lstat(dirpath).st_mode)
    return seen


def _read_only(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, os.lstat(full).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    os.chmod(path, os.lstat(path).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(path: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, 0o644)


def _step(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False, env=env)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def image(kustomized: list[Doc]) -> Iterator[Image]:
    # NB: not pytest's tmp_path: it is private to root (0700), and the roles run as uid 1000.
    root = Path(tempfile.mkdtemp(prefix="aetherius-image-"))
    os.chmod(root, 0o755)
    wheels, venv = root / "wheels", root / "opt" / "aetherius"
    built = Image(
        root=root,
        venv=venv,
        home=root / "home" / "aetherius",
        config=root / "etc" / "aetherius",
        tmp=root / "tmp",
    )
    try:
        # Stage 1: our wheel (the build backend is in the dev environment, so no network).
        _step(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            "-q",
        )
        # Stage 2: a fresh virtualenv, installed from the wheel directory only.
        _step(sys.executable, "-m", "venv", "--without-pip", str(venv))
        _step(
            sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
            "--no-index", "--no-deps", "--find-links", str(wheels), "aetherius",
        )  # fmt: skip
        site = next((venv / "lib").glob("python3*/site-packages"))
        (site / "_aetherius_shared_deps.pth").write_text(
            sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
        )
        # The ConfigMap as the kubelet mounts it, and the image's directories.
        configmap = next(d for d in of_kind(kustomized, "ConfigMap"))
        built.config.mkdir(parents=True)
        for key in ("app.yaml", "watcher.yaml"):
            (built.config / key).write_text(configmap["data"][key], encoding="utf-8")
        built.home.mkdir(parents=True)
        built.tmp.mkdir()
        os.chown(built.tmp, UID, UID)
        os.chmod(built.home, 0o555)
        for tree in (root / "opt", root / "etc"):
            _read_only(tree)
        yield built
    finally:
        _writable(root)
        shutil.rmtree(root, ignore_errors=True)


def _role_commands(docs: list[Doc]) -> set[str]:
    return {pod["containers"][0]["args"][0] for _name, pod in pod_specs(docs)}


def test_every_role_answers_from_the_read_only_install(image: Image, sources: dict[str, list[Doc]]) -> None:
    """Every role the manifests start answers ``--help`` from the image: it imports and parses.
    Starting them is the next test's (the watcher and the API) and the other tests' it names."""
    watched = (image.root / "opt", image.home, image.config)
    before = _snapshot(*watched)
    aetherius = str(image.venv / "bin" / "aetherius")

    help_ = image.run(aetherius, "--help")
    assert help_.returncode == 0, help_.stderr
    assert "Usage: aetherius" in help_.stdout
    version = image.run(aetherius, "version")
    assert version.returncode == 0, version.stderr
    from aetherius import __version__

    assert version.stdout.strip() == __version__

    # The code that runs is the installed wheel, and it loads the shipped ConfigMap files.
    probe = image.run(
        str(image.venv / "bin" / "python"),
        "-c",
        "import aetherius, sys; from pathlib import Path; from aetherius.config import load_settings; "
        f"s = load_settings(config_paths=[Path({str(image.config / 'watcher.yaml')!r})]); "
        "print(aetherius.__file__); print(s.message_bus.url, s.watcher.reason_filters[0], s.health.port)",
    )
    assert probe.returncode == 0, probe.stderr
    module_file, loaded = probe.stdout.splitlines()
    assert module_file.startswith(str(image.venv)), module_file
    assert loaded == "nats://nats.aetherius-system.svc.cluster.local:4222 OOMKilled 8080"

    # Every role subcommand the manifests start must answer --help from the image.
    wanted = set().union(*(_role_commands(docs) for docs in sources.values()))
    assert wanted == {"watch", "orchestrator", "api", "run", "agent"}  # agent: the edge mode
    missing = [cmd for cmd in sorted(wanted) if f" {cmd} " not in help_.stdout]
    assert not missing, f"the image's CLI lacks role subcommands the manifests start: {missing}"
    for command in sorted(wanted):
        result = image.run(aetherius, command, "--help")
        assert result.returncode == 0, (command, result.stderr)

    assert _snapshot(*watched) == before, "the roles wrote into the read-only tree"
    assert not list(image.root.glob("opt/**/__pycache__/*.cpython-*.pyc.*")), "bytecode was written"


def test_the_tree_really_is_read_only_for_uid_1000(image: Image) -> None:
    """The check above means something: the role's user cannot write where it must not."""
    python = str(image.venv / "bin" / "python")
    for target in (image.home / "x", image.venv / "x", image.config / "app.yaml"):
        result = image.run(python, "-c", f"open({str(target)!r}, 'w')")
        assert result.returncode != 0 and "PermissionError" in result.stderr, target
    ok = image.run(python, "-c", "import tempfile; tempfile.NamedTemporaryFile().write(b'x')")
    assert ok.returncode == 0, ok.stderr


def _started(process: subprocess.Popen[bytes], log: Path, marker: str, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while marker not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{marker!r} never came:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def test_the_roles_start_from_the_image_and_stop_cleanly(image: Image, nats_url: str) -> None:
    """Not --help: the watcher, the API, the orchestrator and ``run`` start for real from the
    read-only install, as uid 1000, against the simulated cluster, NATS and a SQLite file, say
    they are up, and exit 0 on SIGTERM, writing nothing into the read-only tree."""
    import asyncio
    import secrets
    import threading

    import yaml

    from aetherius.sim import SimCluster

    watched = (image.root / "opt", image.home, image.config)
    before = _snapshot(*watched)
    aetherius = str(image.venv / "bin" / "aetherius")
    suffix = secrets.token_hex(4)
    app_yaml = image.tmp / "app.yaml"
    app_yaml.write_text(
        yaml.safe_dump(
            {
                "log_format": "json",
                "cluster_id": "image-test",
                "metrics": {"enabled": False},
                "health": {"port": 0},
                "database": {"url": f"sqlite:///{image.tmp / 'aetherius.db'}"},
                "message_bus": {
                    "url": nats_url,
                    "stream": f"IMG_{suffix}",
                    "subject_prefix": f"img{suffix}.signals",
                    "kv_bucket": f"img_{suffix}",
                },
                "api": {"port": 0},
            }
        )
    )
    os.chown(app_yaml, UID, UID)
    loop_ready = threading.Event()
    stop_sim = threading.Event()
    holder: dict[str, str] = {}

    def serve_sim() -> None:
        async def main() -> None:
            async with SimCluster("demo") as sim:
                path = sim.write_kubeconfig(image.tmp / "kubeconfig")
                os.chown(path, UID, UID)
                holder["kubeconfig"] = str(path)
                loop_ready.set()
                await asyncio.to_thread(stop_sim.wait)

        asyncio.run(main())

    sim_thread = threading.Thread(target=serve_sim, daemon=True)
    sim_thread.start()
    assert loop_ready.wait(30), "the simulated cluster did not start"
    kubeconfig = holder["kubeconfig"]
    try:
        upgrade = image.run(aetherius, "db", "upgrade", "--config", str(app_yaml))
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        # NB: the edge agent needs a hub's credentials: tests/edge starts it (spawn_agent).
        roles = {
            "watch": (
                [
                    aetherius,
                    "watch",
                    "--kubeconfig",
                    kubeconfig,
                    "--config",
                    str(app_yaml),
                    "--health-port",
                    "0",
                ],
                "watcher started",
            ),
            "api": (
                [aetherius, "api", "--config", str(app_yaml), "--port", "0"],
                "Aetherius API and dashboard on",
            ),
            "orchestrator": (
                [aetherius, "orchestrator", "--config", str(app_yaml), "--kubeconfig", kubeconfig],
                "orchestrator consuming",
            ),
            "run": (
                [aetherius, "run", "--config", str(app_yaml), "--kubeconfig", kubeconfig, "--port", "0"],
                "Aetherius dashboard: http://",
            ),
        }
        for role, (args, marker) in roles.items():
            log = image.tmp / f"{role}.log"
            process = image.start(*args, log=log)
            try:
                _started(process, log, marker)
                process.send_signal(signal.SIGTERM)
                code = process.wait(timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
            assert code == 0, (role, log.read_text(errors="replace")[-3000:])
    finally:
        stop_sim.set()
        sim_thread.join(timeout=30)
    assert _snapshot(*watched) == before, "a role wrote into the read-only tree"
