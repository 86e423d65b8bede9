"""``ColloquyVectorEnv`` (one server session of N sub-envs) against ``gymnasium.vector.SyncVectorEnv``
over N single remote envs (``ColloquyEnv``), in each of Gymnasium 1.x's autoreset modes: the same
observations, rewards, flags and infos, bit for bit, for the same seeds and actions."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import colloquy
from colloquy import ColloquyEnv, ColloquyVectorEnv

N = 3


def same(a: Any, b: Any, path: str = "") -> None:
    """Exact equality of nested observations/infos (arrays: same dtype, shape and values)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), path
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, f"{path}[{i}]")
        else:
            assert np.array_equal(a, b), f"{path}: {a} vs {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} vs {b!r}"


def run_both(url: str, env_id: str, kwargs: dict[str, Any], mode: AutoresetMode, steps: int, seed: int = 3) -> int:
    vec = ColloquyVectorEnv(env_id, N, url, kwargs=kwargs, autoreset_mode=mode)
    ref = SyncVectorEnv([lambda: ColloquyEnv(env_id, url, kwargs=kwargs) for _ in range(N)], autoreset_mode=mode)
    assert vec.metadata["autoreset_mode"] == ref.metadata["autoreset_mode"] == mode
    assert vec.single_observation_space == ref.single_observation_space
    assert vec.single_action_space == ref.single_action_space
    assert vec.observation_space == ref.observation_space and vec.action_space == ref.action_space
    ended = 0
    try:
        a, b = vec.reset(seed=seed), ref.reset(seed=seed)
        same(a, b, "reset")
        assert a[0] in vec.observation_space
        vec.action_space.seed(seed)
        for t in range(steps):
            actions = vec.action_space.sample()
            ra, rb = vec.step(actions), ref.step(actions)
            same(ra, rb, f"step {t}")
            assert ra[0] in vec.observation_space
            assert ra[1].dtype == np.float64 and ra[2].dtype == np.bool_ and ra[3].dtype == np.bool_
            done = np.logical_or(ra[2], ra[3])
            ended += int(done.sum())
            if mode is AutoresetMode.DISABLED and done.any():
                same(vec.reset(options={"reset_mask": done.copy()}), ref.reset(options={"reset_mask": done.copy()}), f"masked reset {t}")
    finally:
        vec.close()
        ref.close()
    return ended


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
def test_echo_vector_matches_sync_vector_env(server: Any, mode: AutoresetMode) -> None:
    # Episodes of 4 steps: each mode's autoreset happens many times in 30 steps.
    ended = run_both(server.ws_url, "Echo-v0", {"episodeLength": 4, "obsSize": 5}, mode, steps=30)
    assert ended >= N * 6


def test_same_step_final_obs_and_info(server: Any) -> None:
    vec = ColloquyVectorEnv("Echo-v0", 2, server.ws_url, kwargs={"episodeLength": 2}, autoreset_mode="same-step")
    vec.reset(seed=1)
    vec.step(np.array([0, 0]))
    obs, rew, term, trunc, infos = vec.step(np.array([0, 0]))
    assert term.tolist() == [True, True]
    assert infos["_final_obs"].tolist() == [True, True]
    for o in infos["final_obs"]:
        assert o in vec.single_observation_space and o.dtype == np.float32
        assert o[0] == 1.0  # the time fraction at the end of the episode
    assert obs[:, 0].tolist() == [0.0, 0.0]  # the reset observation
    vec.close()


def test_teacher_student_vector_matches_sync_vector_env(server: Any) -> None:
    """A dialog env (token mode, the tiny base model as student), next-step autoreset."""
    run_both(server.ws_url, "TeacherStudent-v0", {"maxTokens": 140}, AutoresetMode.NEXT_STEP, steps=20)


def test_make_vec_uses_one_session(registered: list[str]) -> None:
    envs = gym.make_vec("colloquy/Echo-v0", num_envs=4, vectorization_mode="vector_entry_point", kwargs={"obsSize": 6}, obs_encoding="f64")
    assert isinstance(envs, ColloquyVectorEnv)
    assert envs.observation_space.shape == (4, 6)
    obs, _ = envs.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (4, 6)
    assert envs.state()["numEnvs"] == 4
    envs.close()
    # The Sync form over single envs works too (gymnasium's own vectoriser).
    sync = gym.make_vec("colloquy/Echo-v0", num_envs=2, vectorization_mode="sync")
    o, _ = sync.reset(seed=0)
    assert o.shape == (2, 8)
    sync.close()


def test_reset_with_a_list_of_seeds(server: Any) -> None:
    vec = ColloquyVectorEnv("Echo-v0", 3, server.ws_url)
    single = ColloquyEnv("Echo-v0", server.ws_url)
    obs, _ = vec.reset(seed=[7, None, 2**64 + 5])
    assert np.array_equal(obs[0], single.reset(seed=7)[0])
    assert np.array_equal(obs[2], single.reset(seed=5)[0])  # the server's RNG reads seeds modulo 2**32
    st = vec.state()
    assert st["seeds"] == [7, None, 5] and st["rng"]["seedModulus"] == 2**32
    with pytest.raises(colloquy.BadRequest):
        vec.reset(seed=[1, 2])
    vec.close()
    single.close()
