"""Export: a Colloquy checkpoint as a Hugging Face GPT-2 (``colloquy export-model --format hf`` and
``GET /v1/models/base/hf``) loads in transformers with the same log-probabilities and token ids.

Colloquy's side runs in one ``hf_helper.ts`` process per module (``colloquy_side``): random-weight
checkpoints of three architectures, their exports, dialog token ids and Colloquy's log-probs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from colloquy.errors import NotFound  # noqa: E402
from colloquy.hf import HF_FILES, fetch_hf_model, turn_marker_ids  # noqa: E402
from conftest import Server  # noqa: E402
from hf_common import colloquy_cli, export, helper, hf_logprobs, max_abs_diff  # noqa: E402

ARCHS: dict[str, dict[str, Any]] = {
    "relu-tied-learned": {"dModel": 32, "nLayers": 2, "nHeads": 4, "dFF": 48, "contextLength": 64},
    "gelu_new-untied-sinusoidal": {"dModel": 24, "nLayers": 2, "nHeads": 2, "dFF": 40, "contextLength": 48,
                                   "positional": "sinusoidal", "tieEmbeddings": False, "activation": "gelu_new",
                                   "layerNormEps": 1e-6},
    "gelu-erf": {"dModel": 16, "nLayers": 1, "nHeads": 2, "dFF": 32, "contextLength": 40, "activation": "gelu"},
}
N_SEQ = 24
EXTRA_TEXTS = ["", " ", "  two  spaces\n\n\nand newlines\t", "naïve café — 東京 🙂",
               "x\n\nStudent:y\n\nTeacher:<|endoftext|><|pad|>", "\n\nStudent:\n\nStudent:", "don't you'll I'm 1234 5,6"]


@pytest.fixture(scope="module")
def colloquy_side(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = server.model_dir
    root = tmp_path_factory.mktemp("hf-export")
    texts: list[str] = helper({"op": "corpus", "count": 60})["texts"] + EXTRA_TEXTS
    reqs: list[dict[str, Any]] = [{"op": "encode", "model": base, "texts": texts},
                                  {"op": "corpusIds", "model": base, "count": N_SEQ, "maxLen": 256}]
    for name, arch in ARCHS.items():
        ckpt = str(root / name)
        reqs += [{"op": "random", "dir": ckpt, "tokenizerFrom": base, "config": arch, "seed": 7},
                 {"op": "export", "model": ckpt, "out": str(root / f"{name}-hf")},
                 {"op": "corpusIds", "model": ckpt, "count": N_SEQ, "maxLen": arch["contextLength"]}]
    res = helper(reqs, timeout=300)
    seqs = {"base": res[1]["ids"], **{name: res[4 + 3 * i]["ids"] for i, name in enumerate(ARCHS)}}
    lp_reqs = [{"op": "logprobs", "model": base, "sequences": seqs["base"]}]
    lp_reqs += [{"op": "logprobs", "model": str(root / name), "sequences": seqs[name]} for name in ARCHS]
    lps = helper(lp_reqs, timeout=300)
    return {"root": root, "texts": texts, "ids": res[0]["ids"], "seqs": seqs,
            "logprobs": {"base": lps[0]["logprobs"], **{n: lps[1 + i]["logprobs"] for i, n in enumerate(ARCHS)}}}


def test_served_export_is_the_cli_export_and_matches_colloquy(server: Server, colloquy_side: dict[str, Any], tmp_path: Path) -> None:
    got = fetch_hf_model(server.ws_url, tmp_path / "served")
    assert sorted(p.name for p in got.iterdir()) == sorted(HF_FILES)
    cli = export(server.model_dir, tmp_path / "cli")  # the real command line
    for f in HF_FILES:  # the route serves exactly what the command writes
        assert hashlib.sha256((got / f).read_bytes()).digest() == hashlib.sha256((cli / f).read_bytes()).digest(), f
    model = AutoModelForCausalLM.from_pretrained(got)
    assert type(model).__name__ == "GPT2LMHeadModel"
    seqs = colloquy_side["seqs"]["base"]
    assert len(seqs) >= 20 and max(len(s) for s in seqs) <= model.config.n_positions
    assert max_abs_diff(hf_logprobs(model, seqs), colloquy_side["logprobs"]["base"]) < 1e-4
    # A second fetch into the same folder keeps the verified files and gives the same folder.
    assert fetch_hf_model(server.ws_url, tmp_path / "served") == got


def test_unknown_model_is_not_found(server: Server) -> None:
    with pytest.raises(NotFound):
        fetch_hf_model(server.ws_url, name="no-such-model")


@pytest.mark.parametrize("name", list(ARCHS))
def test_random_weights_give_the_same_logprobs(colloquy_side: dict[str, Any], name: str) -> None:
    # Every weight random (not a near-uniform init), so that any misplaced parameter shows.
    arch = ARCHS[name]
    hf = colloquy_side["root"] / f"{name}-hf"
    cfg = json.loads((hf / "config.json").read_text())
    assert cfg["activation_function"] == arch.get("activation", "relu")
    assert cfg["tie_word_embeddings"] == arch.get("tieEmbeddings", True)
    model = AutoModelForCausalLM.from_pretrained(hf)
    seqs, want = colloquy_side["seqs"][name], colloquy_side["logprobs"][name]
    assert len(seqs) >= 20
    assert max(want[0]) - min(want[0]) > 1.0  # far from uniform: the comparison means something
    assert max_abs_diff(hf_logprobs(model, seqs), want) < 1e-4


def test_autotokenizer_gives_colloquys_ids(server: Server, colloquy_side: dict[str, Any]) -> None:
    hf = colloquy_side["root"] / "relu-tied-learned-hf"  # the base's tokenizer, exported
    tok = AutoTokenizer.from_pretrained(hf)
    texts: list[str] = colloquy_side["texts"]
    want: list[list[int]] = colloquy_side["ids"]
    assert [tok(t)["input_ids"] for t in texts] == want
    assert [tok.decode(ids) for ids in want] == texts
    # The turn markers are special tokens, one id each.
    ids = turn_marker_ids(hf)
    assert tok.convert_tokens_to_ids(["\n\nStudent:", "\n\nTeacher:"]) == [ids["student"], ids["teacher"]]
    assert {"\n\nStudent:", "\n\nTeacher:", "<|endoftext|>", "<|pad|>"} <= set(tok.all_special_tokens)
    assert tok.eos_token_id == ids["end_of_text"] and tok.pad_token_id == ids["pad"]


def test_export_errors_are_coded(tmp_path: Path) -> None:
    r = colloquy_cli("export-model", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and r.stderr.startswith("error BAD_CONFIG: --format hf is required"), r.stderr
    r = colloquy_cli("export-model", "--format", "hf", "--out", str(tmp_path / "x"), "--model", str(tmp_path))
    assert r.returncode == 2 and "is not a Colloquy checkpoint" in r.stderr, r.stderr
