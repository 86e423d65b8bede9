"""TRL: ``GRPOTrainer`` with ``colloquy.trl.ColloquyRollout`` trains the server's HF-exported base
against a live TeacherStudent-v0 over the wire; the rewards TRL logs are the server's recorded ones.

The server of this module records dialogs in a SQLite file; they are read back with the real
``colloquy export`` command."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("trl")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from colloquy.errors import BadConfig  # noqa: E402
from colloquy.hf import fetch_hf_model, turn_marker_ids  # noqa: E402
from colloquy.trl import ColloquyRollout, seed_dataset, server_reward  # noqa: E402
from conftest import ROOT, Server, start_server  # noqa: E402
from hf_common import colloquy_cli  # noqa: E402

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
KWARGS = {"maxTokens": 128}  # the Cohen prompt is 81 tokens of the tiny base's tokenizer
STEPS = 3


@pytest.fixture(scope="module")
def recording_server(base_model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    db = tmp_path_factory.mktemp("trl-db") / "colloquy.db"
    s = start_server({"storage": {"db": str(db)}})
    try:
        yield s, db
    finally:
        s.stop()


@pytest.fixture(scope="module")
def trained(recording_server: tuple[Server, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    server, db = recording_server
    root = tmp_path_factory.mktemp("trl")
    path = fetch_hf_model(server.ws_url, root / "base")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    tokenizer = AutoTokenizer.from_pretrained(path)
    rollouts: list[dict[str, Any]] = []
    with ColloquyRollout(server.ws_url, kwargs=KWARGS, max_turn_tokens=8) as rollout:
        def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, Any]:
            out = rollout(prompts, trainer)
            # The model's log-probs of the very ids it was given, with the parameters it sampled with.
            with torch.no_grad():
                forward = [torch.log_softmax(trainer.model(torch.tensor([p + c])).logits[0, len(p) - 1:-1].double(), -1)
                           .gather(-1, torch.tensor(c)[:, None])[:, 0].tolist()
                           for p, c in zip(out["prompt_ids"], out["completion_ids"])]
            rollouts.append({**out, "forward": forward, "dialogs": list(rollout.last)})
            return out

        args = GRPOConfig(output_dir=str(root / "out"), max_steps=STEPS, per_device_train_batch_size=4, num_generations=2,
                          learning_rate=1e-2, beta=0.04, logging_steps=1, log_completions=True, num_completions_to_print=0,
                          report_to="none", use_cpu=True, bf16=False, save_strategy="no", seed=0)
        trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=server_reward, rollout_func=rollout_func,
                              train_dataset=seed_dataset(16), args=args)
        trainer.train()
    r = colloquy_cli("export", "--db", str(db), "--agent", "trl", "--out", "-")
    assert r.returncode == 0, r.stderr
    stored = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    logged = pd.concat([pd.read_parquet(f) for f in sorted((root / "out" / "completions").glob("completions_*.parquet"))])
    return {"trainer": trainer, "model": model, "before": before, "rollouts": rollouts, "stored": stored,
            "logged": logged, "markers": turn_marker_ids(path), "tokenizer": tokenizer}


def test_trainer_runs_steps_and_changes_the_parameters(trained: dict[str, Any]) -> None:
    assert trained["trainer"].state.global_step == STEPS and len(trained["rollouts"]) == STEPS
    changed = max((p.detach() - trained["before"][k]).abs().max().item() for k, p in trained["model"].named_parameters())
    assert changed > 1e-4
    # Learning needs reward differences inside a group: some group of the run had them.
    assert min(h["frac_reward_zero_std"] for h in trained["trainer"].state.log_history if "frac_reward_zero_std" in h) < 1


def test_logged_rewards_are_the_servers_recorded_rewards(trained: dict[str, Any]) -> None:
    logged, stored = trained["logged"], trained["stored"]
    by_key = {d["agentId"]: d for d in stored}
    assert len(logged) == STEPS * 4 and logged["colloquy_dialog"].is_unique
    # Exactly the run's dialogs are stored under its agent name, each ended, each once.
    assert sorted(by_key) == sorted(logged["colloquy_dialog"]) and len(stored) == len(by_key)
    for row in logged.itertuples():
        d = by_key[row.colloquy_dialog]
        assert d["agent"] == "trl" and d["endReason"] in ("terminated", "truncated")
        total = 0.0
        for rw in d["rewards"]:
            total += rw["total"]
        assert np.float32(total) == np.float32(row.server_reward), (row.colloquy_dialog, total, row.server_reward)
    assert logged["server_reward"].std() > 0  # not a constant that would match anything
    # The per-step means TRL logged are those of the server's dialogs of that step.
    means = [h["rewards/server_reward/mean"] for h in trained["trainer"].state.log_history if "rewards/server_reward/mean" in h]
    assert len(means) == STEPS
    for step, mean in enumerate(means, start=1):
        keys = logged[logged["step"] == step]["colloquy_dialog"]
        want = np.mean([np.float32(sum(r["total"] for r in by_key[k]["rewards"])) for k in keys], dtype=np.float64)
        assert math.isclose(mean, want, rel_tol=1e-6, abs_tol=1e-7)


def test_token_ids_travel_without_retokenising(trained: dict[str, Any]) -> None:
    marks, tok = trained["markers"], trained["tokenizer"]
    by_key = {d["agentId"]: d for d in trained["stored"]}
    model_tokens = 0
    for out in trained["rollouts"]:
        assert len(out["prompt_ids"]) == 4
        for p, c, lp, m, fwd, d in zip(out["prompt_ids"], out["completion_ids"], out["logprobs"], out["env_mask"],
                                       out["forward"], out["dialogs"]):
            assert p == d.prompt_ids and c == d.completion_ids and len(c) == len(m) == len(lp)
            # Sampling log-probs are the model's on exactly these ids: no token was re-encoded.
            for j in range(len(c)):
                if m[j]:
                    model_tokens += 1
                    assert abs(fwd[j] - lp[j]) < 1e-5, (j, fwd[j], lp[j])
                else:
                    assert math.isnan(lp[j])
            # Split the completion into turns by its markers: the model wrote every teacher token and
            # none of the student's, and the turns are the ones the server stored (a turn the token
            # limit cut is stored when it has text). The first teacher turn began in the prompt
            # ("Teacher: Do you"): its stored text starts there.
            start = len(p) - p[::-1].index(marks["teacher"])
            turns: list[tuple[str, list[int], list[int]]] = [("teacher", p[start:], [])]
            for t, mk in zip(c, m):
                role = turns[-1][0]
                if role == "teacher" and t == marks["student"]:
                    turns.append(("student", [], []))
                elif role == "student" and t in (marks["teacher"], marks["end_of_text"]):
                    turns.append(("teacher", [], []))
                elif role == "teacher" and t == marks["end_of_text"]:
                    assert mk == 1 and d.terminated
                    turns.append(("teacher", [], []))
                else:
                    turns[-1][1].append(t)
                    turns[-1][2].append(mk)
            assert all(set(mks) <= {1} for role, _, mks in turns if role == "teacher")
            assert all(set(mks) <= {0} for role, _, mks in turns if role == "student")
            if not turns[-1][1]:
                turns.pop()  # the open turn at the end, empty: not stored
            said = [(role, tok.decode(ids)) for role, ids, _ in turns]
            stored = [(msg["speaker"], msg["content"]) for msg in by_key[d.key]["messages"]]
            assert said == stored
    assert model_tokens > 20


def test_readme_from_python_examples_run(recording_server: tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = recording_server
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## From Python\n"):]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2 and all("ws://127.0.0.1:8787/v1/env" in b for b in blocks)
    out = []
    for code in blocks:
        code = code.replace("ws://127.0.0.1:8787/v1/env", server.ws_url).replace("max_steps=20", "max_steps=1")
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        out.append(r.stdout.splitlines())
    assert float(out[0][0]) < 1e-4  # the HF export's next-token log-probs are the env's own
    assert out[0][1].startswith("KL(policy || base) = ")


def test_bad_uses_are_coded_errors(recording_server: tuple[Server, Path]) -> None:
    server, _ = recording_server
    with pytest.raises(BadConfig, match="actionMode"):
        ColloquyRollout(server.ws_url, kwargs={"actionMode": "utterance"})
    with pytest.raises(BadConfig, match="max_turn_tokens"):
        ColloquyRollout(server.ws_url, max_turn_tokens=0)
    with pytest.raises(BadConfig):
        seed_dataset(0)
    with pytest.raises(BadConfig, match="rollout_func"):
        server_reward(["0"], ["x"])
    with ColloquyRollout(server.ws_url, kwargs=KWARGS) as rollout:
        with pytest.raises(BadConfig, match="episode seeds"):
            rollout(["What is 2 + 2?"], object())
