"""Gymnasium's own ``check_env`` over every env id the server registers, in every action mode, with
default kwargs: no failure and no warning beyond the ones Gymnasium's own test suite ignores."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import colloquy

# Gymnasium's tests/envs/test_envs.py: the warnings it accepts from check_env on its own envs.
CHECK_ENV_IGNORE_WARNINGS = [
    f"\x1b[33mWARN: {message}\x1b[0m"
    for message in [
        "A Box observation space minimum value is -infinity. This is probably too low.",
        "A Box observation space maximum value is infinity. This is probably too high.",
        "For Box action spaces, we recommend using a symmetric and normalized space (range=[-1, 1] or [0, 1]). See https://stable-baselines3.readthedocs.io/en/master/guide/rl_tips.html for more information.",
    ]
]

# The action modes of envs whose kwargs have an `actionMode` (TeacherStudent-v0's schema).
ACTION_MODES = ("token", "utterance")
CASES = [("Echo-v0", None), *[("TeacherStudent-v0", m) for m in ACTION_MODES]]


def test_every_server_env_and_mode_is_checked(server: Any) -> None:
    listed = colloquy.list_envs(server.ws_url)
    cases = set()
    for e in listed:
        kwargs = e["spec"]["kwargs"]
        cases |= {(e["id"], m) for m in ACTION_MODES} if "actionMode" in kwargs else {(e["id"], None)}
    assert cases == set(CASES)


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message.args[0]) if w.message.args else str(w.message) for w in caught]


@pytest.mark.parametrize("env_id,mode", CASES, ids=[f"{i}-{m or 'default'}" for i, m in CASES])
def test_check_env(registered: list[str], env_id: str, mode: str | None) -> None:
    gid = f"colloquy/{env_id}"
    assert gid in registered
    make_kwargs = {"kwargs": {"actionMode": mode}} if mode else {}
    env = gym.make(gid, **make_kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    unexpected = [m for m in _messages(caught) if m not in CHECK_ENV_IGNORE_WARNINGS]
    assert unexpected == []


@pytest.mark.parametrize("env_id,mode", CASES, ids=[f"{i}-{m or 'default'}" for i, m in CASES])
def test_observations_have_the_declared_dtypes_and_shapes(registered: list[str], env_id: str, mode: str | None) -> None:
    """Through gymnasium.make (with its passive checker): every observation is in the space, with
    exactly the declared types, and nothing warns."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(f"colloquy/{env_id}", **({"kwargs": {"actionMode": mode}} if mode else {}))
        env.action_space.seed(5)
        obs, info = env.reset(seed=5)
        for t in range(12):
            _check_types(env.observation_space, obs)
            assert obs in env.observation_space
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
            if terminated or truncated:
                obs, info = env.reset()
        env.close()
    assert _messages(caught) == []


def _check_types(space: gym.Space[Any], obs: Any) -> None:
    if isinstance(space, gym.spaces.Box):
        assert isinstance(obs, np.ndarray) and obs.dtype == space.dtype and obs.shape == space.shape
    elif isinstance(space, gym.spaces.Discrete):
        assert type(obs) is np.int64
    elif isinstance(space, gym.spaces.Text):
        assert type(obs) is str
    elif isinstance(space, gym.spaces.Dict):
        assert isinstance(obs, dict) and list(obs) == list(space.spaces)
        for k, s in space.spaces.items():
            _check_types(s, obs[k])
    else:  # pragma: no cover - no server env has other spaces today
        raise AssertionError(f"untested space {space}")
