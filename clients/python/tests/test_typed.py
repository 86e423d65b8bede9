"""The package is typed (py.typed): mypy --strict passes on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "colloquy"


def test_py_typed_is_shipped() -> None:
    assert (SRC / "py.typed").exists()


def test_mypy_strict() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(SRC)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:]
