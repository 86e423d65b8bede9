"""The same trajectories, bit for bit, through this client, the TypeScript client and the env in
process, for the same seeds and actions (``trajectory.ts`` records the TypeScript side)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import colloquy
from colloquy.spaces import Space

from conftest import run_node


def flat(space: Space, batch: Any, n: int) -> list[Any]:
    """A decoded batch back as JSON-like values per sub-env, every float as the float64 it holds."""
    out = []
    for i in range(n):
        out.append(tolist(space.item(batch, i)))
    return out


def tolist(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.reshape(-1).astype(np.float64).tolist() if v.dtype.kind == "f" else v.reshape(-1).tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: tolist(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [tolist(x) for x in v]
    return v


def exact(a: Any, b: Any) -> bool:
    """Equal, with floats compared by their bits (0.1 == 0.1, and float32 rounding shows)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and np.float64(a).tobytes() == np.float64(b).tobytes()
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(exact(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


CASES = [
    ("Echo-v0", {"obsSize": 6, "episodeLength": 5}, "json", "next-step"),
    ("Echo-v0", {"obsSize": 6, "episodeLength": 5}, "f64", "same-step"),
    ("Echo-v0", {"nActions": 7, "episodeLength": 3}, "f64", "next-step"),
    ("Echo-v0", {"obsSize": 6, "episodeLength": 5}, "binary", "same-step"),
    ("Echo-v0", {"nActions": 7, "episodeLength": 3}, "binary", "next-step"),
    ("TeacherStudent-v0", {"maxTokens": 150}, "json", "next-step"),
    ("TeacherStudent-v0", {"maxTokens": 150}, "binary", "next-step"),
    ("TeacherStudent-v0", {"actionMode": "utterance", "maxTokens": 300}, "json", "next-step"),
]


@pytest.mark.parametrize("env_id,kwargs,encoding,mode", CASES, ids=[f"{c[0]}-{c[2]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_trajectory_matches_typescript_and_in_process(server: Any, env_id: str, kwargs: dict[str, Any], encoding: str, mode: str) -> None:
    n, seed, steps = 3, 11, 16
    with colloquy.Client(server.ws_url) as client:
        s = client.make(env_id, kwargs, num_envs=n, autoreset_mode=mode, obs_encoding=encoding if encoding != "json" else None)
        from colloquy.gym import to_gymnasium

        act = to_gymnasium(s.action_space)
        act.seed(seed)
        actions = [[act.sample() for _ in range(n)] for _ in range(steps)]
        wire_actions = [s.action_space.encode_batch(a, n) for a in actions]
        results = [s.reset(seed=seed)] + [s.step(a) for a in actions]
        s.close()
    ts = json.loads(run_node("clients/python/tests/trajectory.ts", input=json.dumps({
        "url": server.ws_url, "env": env_id, "kwargs": kwargs, "numEnvs": n, "autoresetMode": mode,
        "obsEncoding": encoding, "seed": seed, "actions": wire_actions,
    }), timeout=300))
    space = s.observation_space
    for t, r in enumerate(results):
        for side in ("remote", "local"):
            want = ts[side][t]
            got_obs = flat(space, r.observations, n)
            assert exact(got_obs, want["observations"]), f"{side} step {t}: observations differ"
            # The TypeScript values decode to the very arrays this client made.
            again = space.decode_batch(want["observations"], n)
            assert exact(flat(space, again, n), got_obs)
            assert exact([dict(i) for i in r.infos], want["infos"]), f"{side} step {t}: infos differ"
            if t:
                assert exact(r.rewards.tolist(), want["rewards"]), f"{side} step {t}: rewards differ"
                assert r.terminated.tolist() == want["terminated"] and r.truncated.tolist() == want["truncated"]
