"""Colloquy's Python client: protocol v1 (sync and asyncio) and Gymnasium envs.

    import colloquy
    with colloquy.Client("ws://127.0.0.1:8787/v1/env") as client:   # blocking; colloquy.AsyncClient for asyncio
        envs = client.make("Echo-v0", num_envs=8)
        r = envs.reset(seed=42)

    colloquy.register("ws://127.0.0.1:8787/v1/env")                 # needs the gymnasium extra
    env = gymnasium.make("colloquy/Echo-v0")

The gymnasium names (``ColloquyEnv``, ``ColloquyVectorEnv``, ``register``, ``to_gymnasium``,
``list_envs``) are imported on first use, so the client works without gymnasium installed.
"""

from __future__ import annotations

from typing import Any

from . import errors, spaces
from .aio import PROTOCOL_VERSION, AsyncClient, AsyncSession, MakeInfo, ResetResult, StepResult
from .errors import (
    BadConfig, BadJson, BadRequest, Capacity, Closed, ColloquyError, Internal, InvalidAction, NotFound,
    PayloadTooLarge, ProtocolError, RequestTimeout, ResetNeeded, Unauthorized, UnknownEnv, UnknownOp,
    UnknownSession,
)
from .sync import Client, Session

__version__ = "0.1.0"

_GYM = {"ColloquyEnv", "ColloquyVectorEnv", "ColloquyText", "register", "to_gymnasium", "list_envs", "DEFAULT_URL"}

__all__ = [
    "AsyncClient", "AsyncSession", "Client", "Session", "MakeInfo", "ResetResult", "StepResult", "PROTOCOL_VERSION",
    "ColloquyError", "BadJson", "BadRequest", "UnknownOp", "UnknownEnv", "UnknownSession", "ResetNeeded",
    "InvalidAction", "Capacity", "Unauthorized", "PayloadTooLarge", "RequestTimeout", "Internal", "BadConfig",
    "NotFound", "Closed", "ProtocolError", "errors", "spaces", *sorted(_GYM),
]


def __getattr__(name: str) -> Any:
    if name in _GYM:
        from . import gym

        return getattr(gym, name)
    raise AttributeError(f"module 'colloquy' has no attribute {name!r}")
