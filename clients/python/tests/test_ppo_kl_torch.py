"""The one-file PyTorch agent, ``examples/python/ppo_kl_torch.py``, against a live server on the tests'
tiny base: its exact KL per token from its own torch base model equals the KL from the env's
``info.baseLogProbs`` to 1e-4 (and a wrong base is caught), and a few PPO updates train the policy."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402

from conftest import ROOT, Server  # noqa: E402

EXAMPLE = ROOT / "examples" / "python" / "ppo_kl_torch.py"
# Short dialogs on the tiny base: the Cohen prompt plus a few exchanges.
ENV_KWARGS = json.dumps({"maxTokens": 160})


@pytest.fixture(scope="module")
def ppo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ppo_kl_torch", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_torch_kl_equals_env_kl_and_a_wrong_base_is_caught(server: Server, ppo: ModuleType) -> None:
    args = ppo.Args(url=server.ws_url, seed=5, num_envs=3, env_kwargs=ENV_KWARGS)
    device = torch.device("cpu")
    _, base = ppo.load_base(args.url, device)
    agent = ppo.Agent(copy.deepcopy(base)).eval()
    with torch.no_grad():  # a policy that differs from the base, so that the KL is not ~0
        for p in agent.lm.parameters():
            p.add_(0.05 * torch.randn_like(p))
    envs = ppo.make_envs(args, args.num_envs, True)
    try:
        eps = ppo.Rollout(envs, args.seed, int(base.config.pad_token_id), device).collect(agent, 2)
    finally:
        envs.close()
    n = sum(len(e.actions) for e in eps)
    assert n > 20 and all(len(e.env_base) == len(e.actions) for e in eps)
    with torch.no_grad():
        batch = ppo.episode_batch(eps, 1, device)
        logits, _ = agent.heads(*batch)
        policy_logp = torch.log_softmax(logits.double(), -1)
        env_base = torch.as_tensor(np.stack([b for e in eps for b in e.env_base]))
        kl_torch, kl_env, diff = ppo.kl_agreement(policy_logp, ppo.base_logprobs(base, *batch), env_base)
        assert diff <= 1e-4 and float(kl_torch.mean()) > 0.01  # equal, and not trivially (both ~0)
        assert torch.allclose(kl_torch, kl_env, atol=1e-4, rtol=0)
        # The same check with the base's distribution one token late (the wrong context) fails.
        _, _, shifted = ppo.kl_agreement(policy_logp[1:], ppo.base_logprobs(base, *batch)[1:], env_base[:-1])
        assert shifted > 1e-2

    # The update asserts the agreement itself: with a perturbed base it refuses to train.
    wrong = copy.deepcopy(base)
    with torch.no_grad():
        wrong.transformer.ln_f.weight.mul_(1.02)  # the base at a slightly other temperature
    opt = torch.optim.Adam(agent.parameters(), lr=1e-4)
    with pytest.raises(AssertionError, match="differ by"):
        ppo.ppo_update(agent, wrong, opt, eps, 0.1, args, 1, device, torch.Generator().manual_seed(0))
    m = ppo.ppo_update(agent, base, opt, eps, 0.1, args, 1, device, torch.Generator().manual_seed(0))
    assert m["kl_max_abs_diff"] <= 1e-4 and m["kl"] > 0


def test_a_few_updates_train_the_policy(server: Server, ppo: ModuleType, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    metrics = tmp_path / "metrics.jsonl"
    args = ppo.parse_args(["--url", server.ws_url, "--seed", "2", "--total-steps", "900", "--num-envs", "4",
                           "--episodes-per-update", "4", "--env-kwargs", ENV_KWARGS, "--learning-rate", "1e-3",
                           "--device", "cpu", "--metrics", str(metrics)])
    lines: list[str] = []
    res = ppo.train(args, log=lines.append)
    h = res.history
    assert len(h) >= 3 and h[-1]["env_steps"] >= 900
    assert [json.loads(x)["update"] for x in metrics.read_text().splitlines()] == list(range(1, len(h) + 1))
    assert [json.loads(x) for x in lines] == [json.loads(x) for x in metrics.read_text().splitlines()]
    for m in h:
        assert m["kl_max_abs_diff"] <= 1e-4
        for k in ("pg_loss", "v_loss", "entropy", "approx_kl", "kl", "return", "grad_norm"):
            assert math.isfinite(m[k]), (k, m)
        assert m["grad_norm"] > 0
    assert h[-1]["kl"] > 0  # the policy moved away from the base
    base = dict(res.base.named_parameters())
    with torch.no_grad():
        moved = max(float((p - base[name]).abs().max()) for name, p in res.agent.lm.named_parameters())
    assert moved > 1e-4
    assert float(res.agent.value.weight.detach().abs().max()) > 0  # the value head learned too

    # --out: a Hugging Face folder whose model is the trained policy.
    out = ppo.save_policy(res.agent, res.base_path, str(tmp_path / "policy"))
    loaded = AutoModelForCausalLM.from_pretrained(out).eval()
    x = torch.tensor([[5, 9, 17, 33, 2, 40]])
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits, res.agent.lm(x).logits, atol=1e-5)
    assert (out / "tokenizer.json").exists() and (out / "value_head.pt").exists()
