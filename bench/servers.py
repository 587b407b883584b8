"""The two servers of a bench round and their load generators, as processes.

Ours is `grandrounds serve --demo --demo-case demo` (bench/workload_server.py when the
room needs another object count), without media workers: the workload has no media.
Theirs is the Colyseus anchor: a writable copy of `shared/anchors/colyseus` under the
git-ignored `bench/.anchor/`, installed with `npm ci`, run as its `run.sh` runs it
(`NODE_ENV=production node server.mjs PORT`) and driven by its own `load.cjs`. Every
process started here is stopped by its PID: SIGTERM, then SIGKILL after 5 s.

Each server and each load generator starts in a session of its own, as a service would:
Linux shares the CPU between sessions ("autogroups") before it shares it between
processes, so on a machine where other people's sessions are busy, a server started in
the bench's own session would share one session's slice with its load generator.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil

from bench.loadgen import REPO_ROOT, python_env

ANCHOR_SOURCE: Final = Path("/work/shared/anchors/colyseus")
ANCHOR_DIR: Final = REPO_ROOT / "bench" / ".anchor" / "colyseus"
DEMO_OBJECTS: Final = 20
START_TIMEOUT_S: Final = 30.0
STOP_GRACE_S: Final = 5.0


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_line(process: subprocess.Popen[bytes], log: Path, needle: str) -> str:
    """The log line with `needle` once the server wrote it; the server is stopped if not."""
    deadline = time.monotonic() + START_TIMEOUT_S
    text = ""
    try:
        while time.monotonic() < deadline and process.poll() is None:
            text = log.read_text(errors="replace") if log.exists() else ""
            for line in text.splitlines():
                if needle in line:
                    return line
            time.sleep(0.1)
    except BaseException:
        stop_process(process)
        raise
    stop_process(process)
    raise RuntimeError(f"server did not start ({needle!r} not in {log}):\n{text[-2000:]}")


def start_ours(run_dir: Path, objects: int, redis_url: str = "") -> Server:
    """Our server with the demo room; with `redis_url`, as a cluster node owning it."""
    data_dir = run_dir / "data"
    log = run_dir / "server.log"
    serve = [
        "serve",
        "--demo",
        "--demo-case",
        "demo",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    if redis_url:
        serve += ["--redis", redis_url]
    command = [sys.executable, "-m", "server.cli", *serve]
    if objects != DEMO_OBJECTS:
        command = [sys.executable, "-m", "bench.workload_server", "--objects", str(objects)]
        command += serve
    env = python_env() | {"GRANDROUNDS_MEDIA_WORKERS": "0"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    line = _wait_for_line(process, log, "serving on")
    url = line.split("serving on ", 1)[1].strip()
    return Server("grandrounds", process, url, int(url.rsplit(":", 1)[1]), data_dir)


def start_relay(run_dir: Path, redis_url: str, name: str) -> Server:
    """A spectator relay of the cluster at `redis_url` (`grandrounds relay`)."""
    log = run_dir / f"{name}.log"
    command = [sys.executable, "-m", "server.cli", "relay", "--redis", redis_url, "--port", "0"]
    command += ["--host", "127.0.0.1", "--node-id", name, "--data-dir", str(run_dir / name)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=python_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    line = _wait_for_line(process, log, "serving spectators on")
    url = line.split("serving spectators on ", 1)[1].split()[0]
    return Server(name, process, url, int(url.rsplit(":", 1)[1]))


def ensure_anchor(source: Path = ANCHOR_SOURCE, target: Path = ANCHOR_DIR) -> Path:
    """A writable, installed copy of the anchor (copied and `npm ci`-ed once)."""
    if (target / "node_modules").is_dir():
        return target
    if not (source / "load.cjs").exists():
        raise RuntimeError(f"the Colyseus anchor is not at {source} (use --anchor-src)")
    shutil.copytree(source, target, dirs_exist_ok=True)
    for path in [target, *target.rglob("*")]:  # shared/ is read-only; our copy must not be
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=target, check=True, timeout=600)
    return target


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_colyseus(run_dir: Path, anchor: Path) -> Server:
    port = _free_port()
    log = run_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["node", "server.mjs", str(port)],
            cwd=anchor,
            env=dict(os.environ) | {"NODE_ENV": "production"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_for_line(process, log, "listening")
    return Server("colyseus", process, f"http://127.0.0.1:{port}", port)


def run_load(server: Server, run_dir: Path, load_args: list[str], timeout: float) -> dict[str, Any]:
    """Drive `server` with its own load generator; the result JSON (or {"error": ...})."""
    out = run_dir / "result.json"
    if server.name == "colyseus":
        command = ["node", str(ANCHOR_DIR / "load.cjs"), "--port", str(server.port)]
        cwd, env = ANCHOR_DIR, dict(os.environ)
    else:
        assert server.data_dir is not None
        command = [sys.executable, "-m", "bench.loadgen", "--server", server.url]
        command += ["--data-dir", str(server.data_dir)]
        cwd, env = REPO_ROOT, python_env()
    command += ["--server-pid", str(server.pid), "--out", str(out), *load_args]
    before = _user_system(server.pid)
    with (run_dir / "load.log").open("wb") as log:
        try:
            subprocess.run(
                command,
                cwd=cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                timeout=timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"load generator timed out after {timeout:.0f} s"}
    if not out.exists():
        return {"error": f"no result; see {run_dir / 'load.log'}"}
    result: dict[str, Any] = json.loads(out.read_text())
    result["machine_load_after"] = machine_load()
    after = _user_system(server.pid)
    if before is not None and after is not None:
        user, system = after[0] - before[0], after[1] - before[1]
        result["server_system_share"] = system / (user + system) if user + system else None
    return result


def _user_system(pid: int) -> tuple[float, float] | None:
    """User and system CPU seconds of a process: the system part is its syscalls (sends)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user), float(times.system)


def machine_load() -> dict[str, Any]:
    """Load average, and the share of the last minute some task waited for a CPU (PSI)."""
    load: dict[str, Any] = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    with contextlib.suppress(OSError, ValueError, IndexError):
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        load["cpu_pressure_avg60"] = float(some[2].split("=")[1]) / 100
    return load
