"""Fixtures: real Colloquy servers started as subprocesses (``tests/server.ts``), sharing one tiny base model.

The TypeScript project is the repository this package lives in (three folders up); ``node`` runs
its scripts through ``bin/run.mjs``. ``COLLOQUY_BASE_MODEL`` may name a base model folder to use;
by default a tiny one is built (seconds) in a temporary folder for the session.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import settings

# No example database in the repository (and every run explores afresh).
settings.register_profile("colloquy", database=None)
settings.load_profile("colloquy")

ROOT = Path(__file__).resolve().parents[3]
TESTS = Path(__file__).resolve().parent
NODE = os.environ.get("NODE", "node")


@dataclass
class Server:
    url: str
    ws_url: str
    model_dir: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the launcher shuts down when its stdin closes
            self.proc.wait(15)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.kill()
            self.proc.wait(5)


def run_node(script: str, *args: str, input: str | None = None, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    """Run a TypeScript file of the repository (``node bin/run.mjs FILE ARGS``); its stdout."""
    r = subprocess.run([NODE, "bin/run.mjs", script, *args], cwd=ROOT, input=input, capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise RuntimeError(f"{script} failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return r.stdout


def start_server(config: dict[str, Any] | None = None, timeout: float = 120) -> Server:
    """Start ``tests/server.ts`` with these config overrides and wait for its URL line."""
    proc = subprocess.Popen(
        [NODE, "bin/run.mjs", str(TESTS / "server.ts"), json.dumps(config or {})], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    lines: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        raise RuntimeError("the test server did not start in time") from None
    if not line:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        proc.wait(5)
        raise RuntimeError(f"the test server exited before listening:\n{err[-4000:]}")
    # The server logs nothing at 'silent'; drain stderr anyway so that it never blocks.
    threading.Thread(target=lambda: proc.stderr.read() if proc.stderr else None, daemon=True).start()
    info = json.loads(line)
    return Server(info["url"], info["wsUrl"], info["modelDir"], proc)


@pytest.fixture(scope="session")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny base model every server of the session uses (built by the first server)."""
    given = os.environ.get("COLLOQUY_BASE_MODEL")
    d = given if given else str(tmp_path_factory.mktemp("base-model"))
    os.environ["COLLOQUY_BASE_MODEL"] = d
    return d


@pytest.fixture(scope="session")
def server(base_model: str) -> Iterator[Server]:
    s = start_server()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def registered(server: Server) -> list[str]:
    """The server's env ids registered with gymnasium (``colloquy/<id>``)."""
    import colloquy

    return colloquy.register(server.ws_url)
