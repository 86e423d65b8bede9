"""TRL's ``GRPOTrainer`` trains a Hugging Face model against a Colloquy dialog env, over the wire,
with the server's rewards.

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from colloquy.hf import fetch_hf_model
    from colloquy.trl import ColloquyRollout, seed_dataset, server_reward

    url = "ws://127.0.0.1:8787/v1/env"
    path = fetch_hf_model(url)                                   # the env's own base model, as a GPT-2
    with ColloquyRollout(url, kwargs={"maxTokens": 128}, max_turn_tokens=16) as rollout:
        trainer = GRPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(path), processing_class=AutoTokenizer.from_pretrained(path),
            reward_funcs=server_reward, rollout_func=rollout, train_dataset=seed_dataset(64),
            args=GRPOConfig(output_dir="runs/trl", max_steps=20, per_device_train_batch_size=8, num_generations=4))
        trainer.train()

How it meets TRL 1.13 (``rollout_func``; ``environment_factory`` needs a chat template with tool
calls and makes the env a tool the model calls in text, which re-tokenises every turn):

- A dataset row's prompt is an episode seed (``seed_dataset``: "0", "1", ...). TRL repeats each row
  ``num_generations`` times; every copy resets its dialog with that seed, so a GRPO group shares the
  env's prompt (and the student's random stream) and differs only by what the model says.
- One completion is one whole dialog in the env's token mode (``actionMode: "token"``). The model
  writes the teacher's turns — ``generate`` with the trainer's generation config (temperature,
  top_p, top_k, ...) until ``\\n\\nStudent:`` or ``<|endoftext|>``, each token one env step, a turn's
  steps pipelined — and the server samples the student, scores the reply and appends it (with
  ``\\n\\nTeacher:``) to the transcript it returns as token ids. Those ids join the completion with
  ``env_mask`` 0, which TRL leaves out of the loss. Nothing is decoded and encoded again:
  ``prompt_ids`` are the env's transcript at reset, ``completion_ids`` what followed, checked token
  for token against the transcript the server sends back. ``logprobs`` are the sampling
  distribution's (after the generation config's processors) for the model's tokens, NaN (TRL's
  "not available") for the env's.
- The reward is the dialog's return: the sum of the server's step rewards in step order (the
  ``return`` the server records for the episode). ``server_reward`` hands it to TRL and logs each
  completion's dialog key as the extra column ``colloquy_dialog``: the server stores the dialog
  with that key as its ``agentId`` and ``agent`` as its name, so each reward TRL logs
  (``log_completions=True`` writes them per step) is found with ``colloquy export --agent KEY``.
- ``max_turn_tokens`` ends a teacher turn the model has not ended after that many tokens by
  sending ``\\n\\nStudent:`` itself (as the server's hosted agents do); such a marker is the
  rollout's, not the model's: ``env_mask`` 0.
- GPT-2's positions: TRL's forward numbers positions over its left-padded batch, so the rollout
  checks that the longest prompt plus the env's ``maxTokens`` minus the shortest prompt fits in the
  model's positions; with one prompt length (``prompt: "cohen"`` or a custom text, the default)
  TRL's positions are the env's exactly.

Each dialog runs on a session of its own (``numEnvs`` 1, autoreset disabled), made once and reset
for every rollout, up to ``sessions_per_connection`` per WebSocket connection.
"""

from __future__ import annotations

import copy
import math
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .errors import BadConfig, ColloquyError, ProtocolError, ResetNeeded, UnknownSession
from .spaces import Box, Dict, Discrete
from .sync import Client, Session

if TYPE_CHECKING:
    from datasets import Dataset  # type: ignore[import-untyped]

__all__ = ["ColloquyRollout", "DialogRollout", "seed_dataset", "server_reward", "STUDENT_MARKER", "END_OF_TEXT"]

STUDENT_MARKER = "\n\nStudent:"
END_OF_TEXT = "<|endoftext|>"
_NAN = float("nan")


@dataclass
class DialogRollout:
    """One dialog of a rollout, as it went over the wire."""

    key: str
    """The dialog's key: the ``agentId`` the server stored it with, TRL's ``colloquy_dialog`` column."""
    seed: int
    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    """1 for the model's tokens, 0 for the env's (the student's replies, the turn markers it adds) and the rollout's forced markers."""
    logprobs: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    """The server's reward of every step, in order."""
    terminated: bool = False
    truncated: bool = False
    done: bool = False
    turn_tokens: int = 0

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.completion_ids

    @property
    def total(self) -> float:
        """The dialog's return, summed as the server sums it (left to right from 0)."""
        t = 0.0
        for r in self.rewards:
            t += r
        return t


def seed_dataset(n: int, start: int = 0) -> "Dataset":
    """A train dataset of ``n`` episode seeds (``start`` … ``start + n - 1``) as prompts."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise BadConfig(f"seed_dataset needs n >= 1 and start >= 0 (integers), got n={n!r}, start={start!r}")
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [str(s) for s in range(start, start + n)]})


def server_reward(prompts: Sequence[Any], completions: Sequence[Any], colloquy_return: Sequence[float] | None = None,
                  colloquy_dialog: Sequence[str] | None = None, log_extra: Callable[[str, list[Any]], None] | None = None,
                  **kwargs: Any) -> list[float]:
    """TRL reward function: each completion's dialog return as the server gave it (``ColloquyRollout``
    passes it as the extra field ``colloquy_return``); logs the dialog keys as ``colloquy_dialog``."""
    if colloquy_return is None:
        raise BadConfig("server_reward reads the rewards that ColloquyRollout passes: give the trainer rollout_func=ColloquyRollout(...)")
    if log_extra is not None and colloquy_dialog is not None:
        log_extra("colloquy_dialog", list(colloquy_dialog))
    return [float(r) for r in colloquy_return]


def _seed_of(prompt: Any) -> int:
    if isinstance(prompt, int) and not isinstance(prompt, bool) and prompt >= 0:
        return prompt
    if isinstance(prompt, str) and prompt.strip().isdigit():
        return int(prompt.strip())
    raise BadConfig(f"ColloquyRollout's prompts are episode seeds (a dataset from seed_dataset), got {prompt!r}")


class ColloquyRollout:
    """A ``rollout_func`` for TRL's ``GRPOTrainer``: one dialog per prompt on a Colloquy server (see the module doc).

    ``kwargs`` are the env's make kwargs (``actionMode`` must stay ``"token"``), ``agent`` the agent
    name its dialogs are stored with, ``max_turn_tokens`` the longest teacher turn before the rollout
    ends it. ``last`` holds the dialogs of the latest call.
    """

    def __init__(self, url: str, env: str = "TeacherStudent-v0", kwargs: Mapping[str, Any] | None = None, *,
                 agent: str = "trl", token: str | None = None, max_turn_tokens: int | None = None,
                 sessions_per_connection: int = 16) -> None:
        kw = dict(kwargs or {})
        if kw.get("actionMode", "token") != "token":
            raise BadConfig("ColloquyRollout steps the env one token id at a time: kwargs.actionMode must be 'token'")
        if max_turn_tokens is not None and (isinstance(max_turn_tokens, bool) or not isinstance(max_turn_tokens, int) or max_turn_tokens < 1):
            raise BadConfig(f"max_turn_tokens must be an integer >= 1 or None, got {max_turn_tokens!r}")
        if isinstance(sessions_per_connection, bool) or not isinstance(sessions_per_connection, int) or sessions_per_connection < 1:
            raise BadConfig(f"sessions_per_connection must be an integer >= 1, got {sessions_per_connection!r}")
        self.url, self.env, self.kwargs, self.agent, self.token = url, env, kw, agent, token
        self.max_turn_tokens = max_turn_tokens
        self.sessions_per_connection = sessions_per_connection
        self.run = uuid.uuid4().hex[:12]
        self.last: list[DialogRollout] = []
        self._count = 0
        self._clients: list[Client] = []
        self._sessions: list[Session] = []
        self._max_tokens = 0
        self._vocab = 0

    # ---- sessions ----

    def _make(self, i: int) -> Session:
        while len(self._clients) <= i // self.sessions_per_connection:
            self._clients.append(Client(self.url, token=self.token))
        s = self._clients[i // self.sessions_per_connection].make(self.env, self.kwargs, num_envs=1, autoreset_mode="disabled")
        obs, act = s.observation_space, s.action_space
        tokens = obs.spaces.get("tokens") if isinstance(obs, Dict) else None
        if not isinstance(act, Discrete) or not isinstance(tokens, Box) or "length" not in getattr(obs, "spaces", {}):
            s.close()
            raise BadConfig(f"{self.env} is not a token-mode dialog env (its observations need tokens and length, its actions token ids)")
        self._max_tokens, self._vocab = int(tokens.shape[0]), int(act.n)
        return s

    def _sessions_for(self, n: int) -> list[Session]:
        while len(self._sessions) < n:
            self._sessions.append(self._make(len(self._sessions)))
        return self._sessions[:n]

    def _reset(self, i: int, seed: int, key: str) -> Any:
        options = {"agent": self.agent, "agentId": key}
        try:
            return self._sessions[i].reset(seed=seed, options=options)
        except UnknownSession:  # reaped while idle (sessions.idleTimeoutMs): make it again
            self._sessions[i] = self._make(i)
            return self._sessions[i].reset(seed=seed, options=options)

    def close(self) -> None:
        """Close the sessions and connections (a session already gone on the server is fine)."""
        for s in self._sessions:
            try:
                s.close()
            except ColloquyError:
                pass
        for c in self._clients:
            c.close()
        self._sessions, self._clients = [], []

    def __enter__(self) -> "ColloquyRollout":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- the rollout ----

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        seeds = [_seed_of(p) for p in prompts]
        if getattr(trainer.args, "use_vllm", False):
            raise BadConfig("ColloquyRollout generates with the trainer's model in transformers: set use_vllm=False")
        tok = trainer.processing_class
        stops = tok.convert_tokens_to_ids([STUDENT_MARKER, END_OF_TEXT])
        if tok.convert_ids_to_tokens(stops) != [STUDENT_MARKER, END_OF_TEXT]:
            raise BadConfig(f"the tokenizer has no {STUDENT_MARKER!r} / {END_OF_TEXT!r} token: use the server's HF export (colloquy.hf.fetch_hf_model)")
        self._sessions_for(len(prompts))
        config = trainer.model.config
        if int(config.vocab_size) != self._vocab:
            raise BadConfig(f"the model's vocabulary ({config.vocab_size}) is not the env's ({self._vocab}): train the server's HF export")
        n_pos = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)

        dialogs: list[DialogRollout] = []
        for i, seed in enumerate(seeds):
            key = f"{self.agent}-{self.run}-{self._count:06d}"
            self._count += 1
            r = self._reset(i, seed, key)
            n = int(r.observations["length"][0][0])
            dialogs.append(DialogRollout(key, seed, [int(t) for t in r.observations["tokens"][0][:n]]))
        lengths = [len(d.prompt_ids) for d in dialogs]
        if n_pos is not None and max(lengths) - min(lengths) + self._max_tokens > int(n_pos):
            raise BadConfig(f"TRL numbers positions over its left-padded batch: prompts of {min(lengths)}..{max(lengths)} tokens "
                            f"with maxTokens {self._max_tokens} need {max(lengths) - min(lengths) + self._max_tokens} positions, "
                            f"the model has {n_pos}: use prompts of one length or a smaller maxTokens")

        while active := [(i, d) for i, d in enumerate(dialogs) if not d.done]:
            n = min(self._max_tokens - len(d.ids) for _, d in active)
            if self.max_turn_tokens is not None:
                n = min(n, min(self.max_turn_tokens - d.turn_tokens for _, d in active))
            turns = self._generate(trainer, [d.ids for _, d in active], n, stops)
            sent = []
            for (i, d), (toks, lps) in zip(active, turns):
                forced = (self.max_turn_tokens is not None and toks[-1] not in stops
                          and d.turn_tokens + len(toks) >= self.max_turn_tokens and len(d.ids) + len(toks) < self._max_tokens)
                if forced:
                    toks, lps = toks + [stops[0]], lps + [_NAN]
                sent.append((d, toks, lps, forced, [self._sessions[i].step_nowait([t]) for t in toks]))
            for d, toks, lps, forced, futures in sent:
                self._take(d, toks, lps, forced, futures, stops)
        self.last = dialogs
        return {
            "prompt_ids": [d.prompt_ids for d in dialogs],
            "completion_ids": [d.completion_ids for d in dialogs],
            "logprobs": [d.logprobs for d in dialogs],
            "env_mask": [d.env_mask for d in dialogs],
            "colloquy_return": [d.total for d in dialogs],
            "colloquy_dialog": [d.key for d in dialogs],
        }

    def _take(self, d: DialogRollout, toks: list[int], lps: list[float], forced: bool, futures: list[Future[Any]], stops: list[int]) -> None:
        """The results of one turn's steps: rewards, the end, and the env's tokens that followed."""
        obs, took = None, 0
        for j, f in enumerate(futures):
            try:
                r = f.result()
            except ResetNeeded:
                if d.done:
                    continue  # a step sent after a step that ended the dialog
                raise
            if d.done:
                raise ProtocolError("the env took a step after it ended the dialog")
            d.rewards.append(float(r.rewards[0]))
            d.completion_ids.append(toks[j])
            d.env_mask.append(0 if forced and j == len(toks) - 1 else 1)
            d.logprobs.append(lps[j])
            d.terminated, d.truncated = bool(r.terminated[0]), bool(r.truncated[0])
            d.done = d.terminated or d.truncated
            obs, took = r.observations, j + 1
        assert obs is not None
        n = int(obs["length"][0][0])
        transcript = [int(t) for t in obs["tokens"][0][:n]]
        mine = d.ids
        if transcript[: len(mine)] != mine:
            raise ProtocolError(f"the env's transcript of dialog {d.key} is not the tokens sent to it")
        extra = transcript[len(mine):]
        d.completion_ids += extra
        d.env_mask += [0] * len(extra)
        d.logprobs += [_NAN] * len(extra)
        d.turn_tokens = 0 if toks[took - 1] == stops[0] else d.turn_tokens + took

    def _generate(self, trainer: Any, contexts: list[list[int]], n: int, stops: list[int]) -> list[tuple[list[int], list[float]]]:
        """Up to ``n`` tokens for each context (one batched ``generate``), each cut after its first stop token."""
        import torch
        from trl.models.utils import unwrap_model_for_generation

        pad = trainer.processing_class.pad_token_id
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for i, c in enumerate(contexts):  # left padding: every row's next token at the end
            ids[i, width - len(c):] = torch.tensor(c)
            mask[i, width - len(c):] = 1
        cfg = copy.deepcopy(trainer.generation_config)
        cfg.max_new_tokens, cfg.min_new_tokens = n, None
        cfg.eos_token_id, cfg.pad_token_id = list(stops), pad
        cfg.return_dict_in_generate, cfg.output_scores = True, True
        device = trainer.accelerator.device
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                         gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
                                         generation_kwargs=trainer.generation_kwargs) as model, torch.no_grad():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=cfg)
        new = out.sequences[:, width:].cpu()
        lp = torch.log_softmax(torch.stack(out.scores, 1).float(), -1).cpu().gather(-1, new[..., None])[..., 0]
        rows: list[tuple[list[int], list[float]]] = []
        for i in range(len(contexts)):
            toks = new[i].tolist()
            end = next((j + 1 for j, t in enumerate(toks) if t in stops), len(toks))
            rows.append((toks[:end], [x if math.isfinite(x) else _NAN for x in lp[i, :end].tolist()]))
        return rows
