"""Import: a tiny random GPT-2 made and saved by transformers, read by ``colloquy import-model``, gives
the same log-probabilities in Colloquy (to 1e-4 on 24 dialogs), and ppo-kl trains on it; a model of
another architecture is refused with a coded error naming what Colloquy's LM lacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM  # noqa: E402

from conftest import Server  # noqa: E402
from hf_common import colloquy_cli, helper, hf_logprobs, max_abs_diff  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "gelu_new-tied": {"n_positions": 128, "n_embd": 32, "n_layer": 2, "n_head": 4},
    "gelu-untied": {"n_positions": 64, "n_embd": 24, "n_layer": 1, "n_head": 2, "n_inner": 40,
                    "activation_function": "gelu", "tie_word_embeddings": False},
}


def say_student_often(model: GPT2LMHeadModel, marker: int) -> None:
    """Make the marker that ends a teacher turn likely (logit ≈ 6 above a random one's spread), so that
    short ppo-kl episodes have student replies, hence rewards and a gradient: the final layer norm's
    bias gets a component 3u and the marker's (tied) embedding row becomes 2u, u a unit vector."""
    with torch.no_grad():
        u = torch.randn(model.config.n_embd)
        u /= u.norm()
        model.transformer.ln_f.bias.add_(3 * u)
        model.transformer.wte.weight[marker] = 2 * u


@pytest.fixture(scope="module")
def imported(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hf-import")
    helper({"op": "export", "model": server.model_dir, "out": str(root / "base-hf")})
    tok = AutoTokenizer.from_pretrained(root / "base-hf")  # Colloquy's tokenizer, saved again by transformers below
    out: dict[str, Any] = {"root": root, "models": {}}
    for i, (name, kw) in enumerate(VARIANTS.items()):
        torch.manual_seed(i)
        cfg = GPT2Config(vocab_size=len(tok), bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                         initializer_range=0.3, **kw)  # large weights: log-probs far from uniform
        model = GPT2LMHeadModel(cfg).eval()
        with torch.no_grad():  # non-trivial layer norms and biases too
            for n, p in model.named_parameters():
                if n.endswith("bias") or ".ln_" in n:
                    p.add_(0.2 * torch.randn_like(p))
        if i == 0:
            say_student_often(model, tok.convert_tokens_to_ids("\n\nStudent:"))
        hf = root / f"{name}-hf"
        model.save_pretrained(hf)
        tok.save_pretrained(hf)
        r = colloquy_cli("import-model", "--from", str(hf), "--out", str(root / name))
        assert r.returncode == 0, r.stderr
        out["models"][name] = model
    reqs: list[dict[str, Any]] = [{"op": "corpusIds", "model": str(root / n), "count": 24, "maxLen": kw["n_positions"]}
                                  for n, kw in VARIANTS.items()]
    seqs = [r["ids"] for r in helper(reqs)]
    lps = helper([{"op": "logprobs", "model": str(root / n), "sequences": s} for n, s in zip(VARIANTS, seqs)])
    out["seqs"] = dict(zip(VARIANTS, seqs))
    out["logprobs"] = {n: r["logprobs"] for n, r in zip(VARIANTS, lps)}
    return out


@pytest.mark.parametrize("name", list(VARIANTS))
def test_imported_gpt2_gives_transformers_logprobs(imported: dict[str, Any], name: str) -> None:
    meta = json.loads((imported["root"] / name / "model.json").read_text())["config"]
    assert meta["activation"] == VARIANTS[name].get("activation_function", "gelu_new")
    assert meta["tieEmbeddings"] == VARIANTS[name].get("tie_word_embeddings", True)
    seqs, want = imported["seqs"][name], imported["logprobs"][name]
    assert len(seqs) >= 20
    got = hf_logprobs(imported["models"][name], seqs)
    assert max(got[0]) - min(got[0]) > 1.0  # far from uniform: the comparison means something
    assert max_abs_diff(got, want) < 1e-4


# A short prompt and a scripted student that answers warmly: every teacher turn ends in a reward.
PPO_KWARGS = {"maxTokens": 64, "prompt": {"text": "A chat.\n\nStudent: hi\n\nTeacher:"}, "student": "scripted",
              "scripted": {"rules": [], "default": " great, thank you so much!"}}


def test_ppo_kl_trains_on_the_imported_model(imported: dict[str, Any]) -> None:
    ckpt, run = imported["root"] / "gelu_new-tied", imported["root"] / "ppo-run"
    r = colloquy_cli("train", "--algo", "ppo-kl", "--local", "--model", str(ckpt), "--kwargs", json.dumps(PPO_KWARGS),
                     "--steps", "64", "--num-envs", "2", "--set", "minibatches=2", "--set", "trainLayers=1",
                     "--out", str(run), "--no-progress", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) >= 2 and metrics[-1]["charts/env_steps"] >= 64
    assert sum(m["env/turns_mean"] for m in metrics) > 0 and max(m["env/reward_mean"] for m in metrics) > 0
    assert max(m["losses/grad_norm"] for m in metrics) > 0
    assert all(m["objective/kl"] == m["objective/kl"] for m in metrics)  # finite (not NaN)
    # The policy moved away from the imported weights.
    before = (ckpt / "weights.bin").read_bytes()
    after = (run / "checkpoint" / "weights.bin").read_bytes()
    assert len(before) <= len(after) and before != after[: len(before)]


def test_other_architectures_are_refused_by_name(imported: dict[str, Any]) -> None:
    d = imported["root"] / "llama-hf"
    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(d)
    r = colloquy_cli("import-model", "--from", str(d), "--out", str(imported["root"] / "llama"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error BAD_CONFIG:") and "model_type 'llama' is not supported" in r.stderr
    assert "rotary position embeddings" in r.stderr and "RMSNorm" in r.stderr
    assert not (imported["root"] / "llama" / "model.json").exists()
