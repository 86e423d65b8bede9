"""The README's examples run as written (against the test server instead of `npm start`'s)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server

README = Path(__file__).resolve().parents[1] / "README.md"
DEFAULT = "ws://127.0.0.1:8787/v1/env"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_its_examples() -> None:
    assert len(blocks()) == 2 and all(DEFAULT in b for b in blocks())


@pytest.mark.parametrize("i", range(2), ids=["from-python", "protocol-client"])
def test_readme_example_runs(server: Server, i: int) -> None:
    code = blocks()[i].replace(DEFAULT, server.ws_url)
    if "async def main" in code:
        code += "\nimport asyncio\nasyncio.run(main())\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    if i == 0:
        lines = r.stdout.splitlines()
        # Every step is echoed but the 3 next-step autoresets of each sub-env (episodes of 32 steps).
        assert lines[0].startswith("random agent:") and lines[1] == f"echoing agent: {8 * (100 - 3)}.0"
