"""ppo_kl_torch.py: token-level PPO with KL control to the base policy, in PyTorch, against a Colloquy server.

One file, CleanRL style: typed arguments at the top, then read top to bottom (model → rollout →
KL-penalised rewards → GAE → clipped PPO → β → metrics). The agent is the teacher of
TeacherStudent-v0 in token mode (one action = one token); it acts through the Python client's
vector env (``colloquy.gym.ColloquyVectorEnv``, same-step autoreset, N sub-envs in one session).

- Base policy: the server's own base model, downloaded as a Hugging Face GPT-2
  (``colloquy.hf.fetch_hf_model`` → ``AutoModelForCausalLM.from_pretrained``). The policy is a
  trainable copy of it with a scalar value head on its last hidden state.
- Per-token reward: r_t = env reward_t − β·KL_t, with KL_t the exact KL(π(·|s_t) ‖ p_base(·|s_t)) =
  Σ_v π(v)(log π(v) − log p_base(v)) over the vocabulary, p_base from this file's torch base model.
  β fixed (``--kl-coef``) or, with ``--target-kl`` (nats per dialog), Ziegler et al.'s controller.
- The env is made with ``baseLogProbs: true``: every step's info carries the server's base
  log-probabilities for the agent's next token. Each update computes the same KL from those
  (``kl_agreement``) and asserts that the two agree to ``--kl-tolerance`` (1e-4): the KL this agent
  optimises is the KL Colloquy's own rollout computes for the same tokens.
- GAE over tokens (γ, λ); truncation at the token budget is the task's end (no bootstrap), as in
  ``agents/rl/ppo-kl.ts``. An update takes ``--episodes-per-update`` finished dialogs; dialogs still
  running carry on into the next update (their early tokens keep the behaviour log-probs they were
  sampled with, which is what PPO's ratio needs).
- One JSON line of metrics per update on stdout (and ``--metrics FILE``): ``return`` (mean env
  return of the update's dialogs), ``kl`` (nats per dialog), ``kl_max_abs_diff`` (torch vs env), losses.
  ``--out DIR`` saves the policy as a Hugging Face folder (``from_pretrained``-able, tokenizer
  included; ``colloquy import-model --from DIR`` brings it back to Colloquy). ``--eval-episodes N``
  then plays N dialogs on fixed seeds with the base and with the trained policy and prints both
  mean returns with 95% bootstrap intervals and their paired difference.

Runs on CPU; ``--device cuda`` (the default picks it when there is one) for a GPU.

Documented run (2 shared CPU cores; server ``COLLOQUY_DB=:memory: node bin/colloquy.mjs serve --port
8899`` on the shipped base, data/models/base; the default env: TeacherStudent-v0, student "world")::

    .venv/bin/python examples/python/ppo_kl_torch.py --url ws://127.0.0.1:8899/v1/env --seed 1 --threads 1 \\
        --total-steps 12000 --eval-episodes 64 --eval-seed 1000 \\
        --metrics runs/ppo-kl-torch/metrics.jsonl --out runs/ppo-kl-torch/policy

gave 10 updates of 16 dialogs (12,688 env steps; 4.4 min of this process's CPU, 14.6 min wall on a
machine loaded by other jobs). Training return per dialog 3.19 (update 1) → 7.06 (update 10), KL to
the base 39 nats per dialog (0.56 per token) at the end with β 0.05 fixed; the torch and env KLs never
differed by more than 5e-6 per token. Evaluation, one sampled dialog per seed 1000..1063, mean
return with 95% bootstrap intervals: base 2.79 [2.51, 3.06], trained 6.93 [6.46, 7.39], paired
difference +4.14 [3.60, 4.68].
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from colloquy.gym import ColloquyVectorEnv
from colloquy.hf import fetch_hf_model


# ---- arguments
@dataclass
class Args:
    url: str = "ws://127.0.0.1:8787/v1/env"  # the server's protocol v1 endpoint
    env_id: str = "TeacherStudent-v0"
    env_kwargs: str = "{}"  # JSON kwargs of the env (token mode; baseLogProbs is added)
    seed: int = 1
    device: str = "auto"  # cpu, cuda, cuda:1, ...; auto: cuda when available
    threads: int = 0  # torch CPU threads (0: torch's default; 1 is fastest on a busy machine)
    total_steps: int = 12000  # budget: env steps (agent tokens, summed over the sub-envs)
    num_envs: int = 16  # sub-envs of the vector env
    episodes_per_update: int = 16  # finished dialogs per update
    learning_rate: float = 1e-4
    epochs: int = 4  # PPO epochs per update
    minibatches: int = 4  # minibatches of dialogs per epoch
    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip: float = 0.2  # PPO ratio clip
    value_clip: float = 0.2  # value clip around the old value (0: off)
    vf_coef: float = 0.1
    ent_coef: float = 0.0
    max_grad_norm: float = 1.0
    kl_coef: float = 0.05  # β (the initial one with --target-kl)
    target_kl: float = 0.0  # nats per dialog for Ziegler et al.'s adaptive β (0: β fixed)
    kl_horizon: int = 200  # dialogs over which the adaptive β moves
    kl_tolerance: float = 1e-4  # largest allowed |KL(torch base) − KL(env baseLogProbs)| per token
    metrics: str = ""  # also write the metrics lines to this JSONL file
    out: str = ""  # save the trained policy here as a Hugging Face folder
    eval_episodes: int = 0  # after training: dialogs on fixed seeds for base vs trained (0: none)
    eval_seed: int = 1000  # eval dialog j uses seed eval_seed + j


def parse_args(argv: Sequence[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(Args):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    return Args(**vars(p.parse_args(argv)))


# ---- the policy: a trainable copy of the base model with a value head
LM = Any  # a transformers GPT2LMHeadModel (the server's export)


class Agent(nn.Module):
    def __init__(self, lm: LM) -> None:
        super().__init__()
        self.lm = lm
        self.value = nn.Linear(lm.config.n_embd, 1)
        nn.init.zeros_(self.value.weight)
        nn.init.zeros_(self.value.bias)

    def heads(self, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and values at positions (rows, cols) of a right-padded batch."""
        h = self.lm.transformer(input_ids=ids, attention_mask=mask).last_hidden_state[rows, cols]
        return self.lm.lm_head(h), self.value(h).squeeze(-1)


def right_padded(seqs: Sequence[Sequence[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded on the right, and the attention mask (positions are then 0.. as in the env)."""
    T = max(len(s) for s in seqs)
    x = torch.full((len(seqs), T), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    mask = torch.arange(T)[None] < torch.as_tensor([len(s) for s in seqs])[:, None]
    return x.to(device), mask.long().to(device)


def base_logprobs(lm: LM, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """The base model's next-token log-probabilities (float64) at positions (rows, cols)."""
    h = lm.transformer(input_ids=ids, attention_mask=mask).last_hidden_state[rows, cols]
    return F.log_softmax(lm.lm_head(h).double(), -1)


# ---- the KL, two ways
def exact_kl(policy_logp: torch.Tensor, base_logp: torch.Tensor) -> torch.Tensor:
    """KL(π ‖ p) per row: Σ_v π(v)(log π(v) − log p(v)), from full log-distributions [..., V]."""
    return (policy_logp.exp() * (policy_logp - base_logp)).sum(-1)


def kl_agreement(policy_logp: torch.Tensor, torch_base_logp: torch.Tensor, env_base_logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The exact KL per token with the base log-probs of this file's torch model and with the env's
    ``info.baseLogProbs`` for the same contexts (all [n, V], float64); returns both and their max abs difference."""
    kl_torch = exact_kl(policy_logp, torch_base_logp)
    kl_env = exact_kl(policy_logp, env_base_logp)
    return kl_torch, kl_env, float((kl_torch - kl_env).abs().max()) if len(kl_torch) else 0.0


# ---- rollout: dialogs, token by token
@dataclass
class Episode:
    tokens: list[int]  # the transcript so far (prompt, the agent's tokens, the student's replies)
    pos: list[int] = field(default_factory=list)  # pos[t]: context length when action t was chosen
    actions: list[int] = field(default_factory=list)
    logp: list[float] = field(default_factory=list)  # behaviour log-prob of each action
    env_base: list[np.ndarray] = field(default_factory=list)  # info.baseLogProbs of each context
    rewards: list[float] = field(default_factory=list)
    end: str = ""  # "terminated" or "truncated"


def obs_tokens(obs: dict[str, np.ndarray], i: int) -> list[int]:
    return obs["tokens"][i, : int(obs["length"][i, 0])].tolist()


def env_base_logprobs(infos: dict[str, Any], n: int) -> list[np.ndarray]:
    if "baseLogProbs" not in infos or not np.all(infos["_baseLogProbs"]):
        missing = [i for i in range(n) if "baseLogProbs" not in infos or not infos["_baseLogProbs"][i]]
        raise RuntimeError(f"the env sent no info.baseLogProbs for sub-envs {missing} (make it with baseLogProbs: true, token mode)")
    return [np.asarray(infos["baseLogProbs"][i], dtype=np.float64) for i in range(n)]


@torch.no_grad()
def next_token_logp(agent: Agent, contexts: Sequence[Sequence[int]], pad: int, device: torch.device) -> torch.Tensor:
    ids, mask = right_padded(contexts, pad, device)
    rows = torch.arange(len(contexts), device=device)
    cols = torch.as_tensor([len(c) - 1 for c in contexts], device=device)
    logits, _ = agent.heads(ids, mask, rows, cols)
    return F.log_softmax(logits.double(), -1)


class Rollout:
    """Plays the vector env with the current policy; ``collect`` returns finished dialogs."""

    def __init__(self, envs: ColloquyVectorEnv, seed: int, pad: int, device: torch.device) -> None:
        self.envs, self.pad, self.device = envs, pad, device
        self.gen = torch.Generator().manual_seed(seed)
        obs, self.infos = envs.reset(seed=seed)
        self.live = [Episode(obs_tokens(obs, i)) for i in range(envs.num_envs)]
        self.steps = 0

    def collect(self, agent: Agent, n: int) -> list[Episode]:
        done: list[Episode] = []
        while len(done) < n:
            base = env_base_logprobs(self.infos, len(self.live))
            logp = next_token_logp(agent, [e.tokens for e in self.live], self.pad, self.device).cpu()
            actions = torch.multinomial(logp.exp(), 1, generator=self.gen)[:, 0]
            for i, e in enumerate(self.live):
                a = int(actions[i])
                e.pos.append(len(e.tokens)); e.actions.append(a); e.logp.append(float(logp[i, a])); e.env_base.append(base[i])
            obs, rewards, terminated, truncated, self.infos = self.envs.step(actions.numpy())
            self.steps += len(self.live)
            for i, e in enumerate(self.live):
                e.rewards.append(float(rewards[i]))
                if terminated[i] or truncated[i]:
                    e.end = "terminated" if terminated[i] else "truncated"
                    done.append(e)
                    self.live[i] = Episode(obs_tokens(obs, i))  # same-step autoreset: the next dialog's first observation
                else:
                    nxt = obs_tokens(obs, i)
                    assert nxt[: len(e.tokens) + 1] == e.tokens + [e.actions[-1]], "the transcript must extend the context"
                    e.tokens = nxt
        return done


# ---- the update: KL-penalised rewards, GAE, clipped PPO
def episode_batch(eps: Sequence[Episode], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each dialog once, up to its last action's context; (rows, cols) index the positions whose
    next-token distribution chose each action (flattened in dialog order)."""
    ids, mask = right_padded([e.tokens[: e.pos[-1]] for e in eps], pad, device)
    rows = torch.as_tensor([b for b, e in enumerate(eps) for _ in e.pos], device=device)
    cols = torch.as_tensor([p - 1 for e in eps for p in e.pos], device=device)
    return ids, mask, rows, cols


def gae(rewards: np.ndarray, values: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Advantages of one dialog (its last token ends it: no bootstrap)."""
    adv = np.zeros_like(rewards)
    last = 0.0
    for t in reversed(range(len(rewards))):
        next_v = values[t + 1] if t + 1 < len(rewards) else 0.0
        last = rewards[t] + gamma * next_v - values[t] + gamma * lam * last
        adv[t] = last
    return adv


def ppo_update(agent: Agent, base: LM, opt: torch.optim.Optimizer, eps: list[Episode], beta: float, args: Args,
               pad: int, device: torch.device, gen: torch.Generator) -> dict[str, float]:
    # Old policy, values and the two KLs, before any gradient step.
    with torch.no_grad():
        batch = episode_batch(eps, pad, device)
        logits, values = agent.heads(*batch)
        logp_all = F.log_softmax(logits.double(), -1)
        torch_base = base_logprobs(base, *batch)
        env_base = torch.as_tensor(np.stack([b for e in eps for b in e.env_base]), device=device)
        kl, _, kl_diff = kl_agreement(logp_all, torch_base, env_base)
    if not kl_diff <= args.kl_tolerance:
        raise AssertionError(f"the torch KL and the env's baseLogProbs KL differ by {kl_diff:.3g} (> {args.kl_tolerance})")
    kl_np, v_np = kl.cpu().numpy(), values.double().cpu().numpy()
    old_logp = torch.as_tensor([lp for e in eps for lp in e.logp], dtype=torch.float64, device=device)
    actions = torch.as_tensor([a for e in eps for a in e.actions], device=device)

    # Per-token rewards r_t − β·KL_t, GAE per dialog.
    adv_parts, k = [], 0
    for e in eps:
        n = len(e.actions)
        adv_parts.append(gae(np.asarray(e.rewards) - beta * kl_np[k : k + n], v_np[k : k + n], args.gamma, args.gae_lambda))
        k += n
    adv = np.concatenate(adv_parts)
    ret = torch.as_tensor(adv + v_np, device=device)
    old_v = torch.as_tensor(v_np, device=device)
    adv_t = torch.as_tensor((adv - adv.mean()) / (adv.std() + 1e-8), device=device)
    offsets = np.cumsum([0] + [len(e.actions) for e in eps])

    # Clipped PPO epochs over minibatches of dialogs.
    stats: dict[str, list[float]] = {k: [] for k in ("pg_loss", "v_loss", "entropy", "approx_kl", "clipfrac", "grad_norm")}
    for _ in range(args.epochs):
        order = torch.randperm(len(eps), generator=gen).tolist()
        for m in range(args.minibatches):
            idx = order[m :: args.minibatches]
            if not idx:
                continue
            sel = torch.as_tensor(np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx]), device=device)
            logits, v = agent.heads(*episode_batch([eps[i] for i in idx], pad, device))
            lp_all = F.log_softmax(logits.float(), -1)
            logp = lp_all.gather(-1, actions[sel, None])[:, 0].double()
            entropy = -(lp_all.exp() * lp_all).sum(-1).mean()
            log_ratio = logp - old_logp[sel]
            ratio = log_ratio.exp()
            a = adv_t[sel]
            pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - args.clip, 1 + args.clip)).mean()
            v, r, v0 = v.double(), ret[sel], old_v[sel]
            v_loss = (v - r) ** 2
            if args.value_clip > 0:
                v_loss = torch.max(v_loss, (v0 + (v - v0).clamp(-args.value_clip, args.value_clip) - r) ** 2)
            v_loss = 0.5 * v_loss.mean()
            loss = pg_loss + args.vf_coef * v_loss - args.ent_coef * entropy
            opt.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm if args.max_grad_norm > 0 else math.inf)
            opt.step()
            with torch.no_grad():
                stats["pg_loss"].append(float(pg_loss)); stats["v_loss"].append(float(v_loss)); stats["entropy"].append(float(entropy))
                stats["approx_kl"].append(float(((ratio - 1) - log_ratio).mean()))
                stats["clipfrac"].append(float(((ratio - 1).abs() > args.clip).double().mean())); stats["grad_norm"].append(float(grad_norm))
    per_dialog_kl = [float(kl_np[offsets[b] : offsets[b + 1]].sum()) for b in range(len(eps))]
    return {"kl": float(np.mean(per_dialog_kl)), "kl_per_token": float(kl_np.mean()), "kl_max_abs_diff": kl_diff,
            "value_mean": float(v_np.mean()), **{k: float(np.mean(v)) for k, v in stats.items()}}


# ---- training
def device_of(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else "cpu" if name == "auto" else name)


def load_base(url: str, device: torch.device) -> tuple[Path, LM]:
    from transformers import AutoModelForCausalLM

    path = fetch_hf_model(url)  # the env's own base model, SHA-256 checked
    base: LM = AutoModelForCausalLM.from_pretrained(path)
    base.to(device).eval()
    base.requires_grad_(False)
    return path, base


def make_envs(args: Args, n: int, base_logprobs_info: bool) -> ColloquyVectorEnv:
    kwargs = {**json.loads(args.env_kwargs), "actionMode": "token"}
    if base_logprobs_info:
        kwargs["baseLogProbs"] = True
    return ColloquyVectorEnv(args.env_id, n, args.url, kwargs=kwargs, autoreset_mode="same-step")


@dataclass
class Result:
    agent: Agent
    base: LM
    base_path: Path
    history: list[dict[str, float]]


def train(args: Args, log: Any = print) -> Result:
    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = device_of(args.device)
    base_path, base = load_base(args.url, device)
    agent = Agent(copy.deepcopy(base).requires_grad_(True)).to(device).eval()  # eval: no dropout (the export has none anyway)
    pad = int(base.config.pad_token_id)
    opt = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    gen = torch.Generator().manual_seed(args.seed + 1)
    envs = make_envs(args, args.num_envs, True)
    obs_space: Any = envs.single_observation_space
    max_tokens = int(obs_space["tokens"].shape[0])
    if max_tokens > base.config.n_positions:
        envs.close()
        raise ValueError(f"the env's maxTokens {max_tokens} exceeds the base model's context {base.config.n_positions}")
    if args.metrics:
        Path(args.metrics).parent.mkdir(parents=True, exist_ok=True)
    metrics_file = open(args.metrics, "a") if args.metrics else None
    history: list[dict[str, float]] = []
    beta, episodes, t_start = args.kl_coef, 0, time.time()
    try:
        rollout = Rollout(envs, args.seed, pad, device)
        while rollout.steps < args.total_steps:
            t0 = time.time()
            eps = rollout.collect(agent, args.episodes_per_update)
            t1 = time.time()
            m = ppo_update(agent, base, opt, eps, beta, args, pad, device, gen)
            episodes += len(eps)
            m = {"update": len(history) + 1, "env_steps": rollout.steps, "episodes": episodes,
                 "return": float(np.mean([sum(e.rewards) for e in eps])), "tokens_per_dialog": float(np.mean([len(e.actions) for e in eps])),
                 "beta": beta, **m, "rollout_s": t1 - t0, "update_s": time.time() - t1, "elapsed_s": time.time() - t_start}
            if args.target_kl > 0:  # Ziegler et al. (2019): β moves by at most ±20% per horizon's worth of dialogs
                beta *= 1 + float(np.clip(m["kl"] / args.target_kl - 1, -0.2, 0.2)) * len(eps) / args.kl_horizon
            history.append(m)
            line = json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in m.items()})
            log(line)
            if metrics_file:
                metrics_file.write(line + "\n"); metrics_file.flush()
    finally:
        envs.close()
        if metrics_file:
            metrics_file.close()
    return Result(agent, base, base_path, history)


def save_policy(agent: Agent, base_path: Path, out: str) -> Path:
    """The policy as a Hugging Face folder (GPT-2, tokenizer files copied from the base's export)
    plus ``value_head.pt``."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    agent.lm.save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(base_path / f, d / f)
    torch.save(agent.value.state_dict(), d / "value_head.pt")
    return d


# ---- evaluation: base vs trained on the same seeds
@torch.no_grad()
def evaluate(lm: LM, args: Args, seeds: Sequence[int], device: torch.device) -> list[float]:
    """One dialog per seed, sampled from ``lm`` (temperature 1); its env return."""
    agent = Agent(lm).to(device).eval()
    pad = int(lm.config.pad_token_id)
    gen = torch.Generator().manual_seed(args.seed + 2)
    returns: list[float] = []
    for c in range(0, len(seeds), args.num_envs):
        chunk = list(seeds[c : c + args.num_envs])
        envs = make_envs(args, len(chunk), False)
        try:
            obs, _ = envs.reset(seed=chunk)
            ctx = [obs_tokens(obs, i) for i in range(len(chunk))]
            ret, ended = np.zeros(len(chunk)), np.zeros(len(chunk), dtype=bool)
            while not ended.all():
                live = np.flatnonzero(~ended)  # a slot that ended plays on (autoreset) with token 0 and no longer counts
                logp = next_token_logp(agent, [ctx[i] for i in live], pad, device).cpu()
                actions = np.zeros(len(chunk), dtype=np.int64)
                actions[live] = torch.multinomial(logp.exp(), 1, generator=gen)[:, 0].numpy()
                obs, r, term, trunc, _ = envs.step(actions)
                ret += np.where(ended, 0.0, r)
                ended |= term | trunc
                ctx = [obs_tokens(obs, i) for i in range(len(chunk))]
        finally:
            envs.close()
        returns += ret.tolist()
    return returns


def bootstrap_ci(x: np.ndarray, seed: int = 0, n: int = 10000) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n, len(x)))].mean(1)
    return float(x.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    res = train(args)
    if args.out:
        print(json.dumps({"saved": str(save_policy(res.agent, res.base_path, args.out))}))
    if args.eval_episodes > 0:
        device = device_of(args.device)
        seeds = [args.eval_seed + j for j in range(args.eval_episodes)]
        base_r = np.asarray(evaluate(res.base, args, seeds, device))
        trained_r = np.asarray(evaluate(res.agent.lm, args, seeds, device))
        report = {"eval_seeds": f"{seeds[0]}..{seeds[-1]}", "base_return": bootstrap_ci(base_r),
                  "trained_return": bootstrap_ci(trained_r), "paired_difference": bootstrap_ci(trained_r - base_r)}
        print(json.dumps({"eval": report}))


if __name__ == "__main__":
    main(sys.argv[1:])
