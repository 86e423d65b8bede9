"""Shared helpers of the Hugging Face tests: Colloquy's side through ``hf_helper.ts``, the CLI, and
log-probabilities computed by transformers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from conftest import NODE, ROOT, run_node


def helper(req: dict[str, Any], timeout: float = 180) -> Any:
    """One request to ``hf_helper.ts`` (Colloquy's tokenizer, LM and checkpoints); its JSON reply."""
    return json.loads(run_node("clients/python/tests/hf_helper.ts", input=json.dumps(req), timeout=timeout))


def colloquy_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``node bin/colloquy.mjs ARGS`` (the real command line)."""
    return subprocess.run([NODE, "bin/colloquy.mjs", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ})


def hf_logprobs(model: Any, sequences: list[list[int]]) -> list[list[float]]:
    """transformers' log-probability of tokens 1… of each sequence given the tokens before."""
    import torch

    out: list[list[float]] = []
    with torch.no_grad():
        for s in sequences:
            x = torch.tensor([s])
            lp = torch.log_softmax(model(x).logits[0, :-1].double(), -1)
            out.append(lp.gather(-1, x[0, 1:, None])[:, 0].tolist())
    return out


def max_abs_diff(a: list[list[float]], b: list[list[float]]) -> float:
    assert [len(r) for r in a] == [len(r) for r in b]
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def export(model_dir: str, out: Path) -> Path:
    r = colloquy_cli("export-model", "--format", "hf", "--out", str(out), "--model", model_dir)
    assert r.returncode == 0, r.stderr
    return out
