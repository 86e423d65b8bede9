"""The OpenEnv endpoint, spoken as OpenEnv's client speaks it (``openenv.core.env_client.EnvClient``).

OpenEnv's client takes ``base_url`` (http or ws), opens ``<base_url>/ws`` with the websockets
library and sends ``{"type": ..., "data": ...}`` text frames one at a time: ``reset`` (data: seed,
episode_id and any extra fields), ``step`` (data: the action dict), ``state`` (no data), ``close``;
replies are ``{"type": "observation" | "state" | "error", "data": ...}``, an observation's data being
``{"observation": {...}, "reward": r, "done": d}`` and an error's ``{"message", "code"}`` with
OpenEnv's WSErrorCode values. The messages below follow those shapes exactly.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from conftest import Server

OPENENV_ERROR_CODES = {"INVALID_JSON", "UNKNOWN_TYPE", "VALIDATION_ERROR", "EXECUTION_ERROR", "CAPACITY_REACHED", "FACTORY_ERROR", "SESSION_ERROR"}


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def ws_url(base_url: str) -> str:
    """OpenEnv's convert_to_ws_url plus the ``/ws`` its EnvClient appends."""
    u = base_url.rstrip("/")
    if u.startswith("http://"):
        u = "ws://" + u[len("http://"):]
    elif u.startswith("https://"):
        u = "wss://" + u[len("https://"):]
    return f"{u}/ws"


def send(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(message))
    reply = json.loads(ws.recv(timeout=60))
    assert isinstance(reply, dict)
    return reply


def an_action(schema: dict[str, Any], t: int) -> Any:
    """A valid action from the env's OpenEnv schema (the ``action`` field of its Action model)."""
    a = schema["action"]["properties"]["action"]
    if a["type"] == "integer":
        lo, hi = a["minimum"], a["maximum"]
        return lo + (t * 7919) % (hi - lo + 1)
    if a["type"] == "string":
        return [" Let's try.", " What do you think?", " Good."][t % 3][: a.get("maxLength", 100)]
    raise AssertionError(f"no action for {a}")


def envs(server: Server) -> list[str]:
    listing = get_json(f"{server.url}/openenv")
    ids = [e["id"] for e in listing["envs"]]
    assert "Echo-v0" in ids and "TeacherStudent-v0" in ids
    for e in listing["envs"]:
        assert e["base_url"] == f"/openenv/{e['id']}"
    return ids


CASES = [("Echo-v0", {}), ("TeacherStudent-v0", {}), ("TeacherStudent-v0", {"actionMode": "utterance"})]


@pytest.mark.parametrize(("env_id", "kwargs"), CASES, ids=["Echo-v0", "TeacherStudent-v0-token", "TeacherStudent-v0-utterance"])
def test_an_episode_as_openenv_client_runs_it(server: Server, env_id: str, kwargs: dict[str, Any]) -> None:
    assert env_id in envs(server)
    base_url = f"{server.url}/openenv/{env_id}"
    assert get_json(f"{base_url}/health") == {"status": "healthy"}
    meta = get_json(f"{base_url}/metadata")
    assert meta["name"] == env_id and isinstance(meta["description"], str)
    schema = get_json(f"{base_url}/schema")
    assert set(schema) == {"action", "observation", "state"}
    if kwargs.get("actionMode") == "utterance":
        schema["action"]["properties"]["action"] = {"type": "string", "maxLength": 100}
    with connect(ws_url(base_url), max_size=100 * 1024 * 1024) as ws:
        r = send(ws, {"type": "reset", "data": {"seed": 7, "episode_id": "py-1", **kwargs}})
        assert r["type"] == "observation", r
        assert set(r["data"]) == {"observation", "reward", "done"}
        assert r["data"]["reward"] is None and r["data"]["done"] is False
        assert set(r["data"]["observation"]) == {"obs", "terminated", "truncated", "info"}
        first_obs = r["data"]["observation"]["obs"]
        steps, rewards = 0, []
        while not r["data"]["done"] and steps < 400:
            r = send(ws, {"type": "step", "data": {"action": an_action(schema, steps)}})
            assert r["type"] == "observation", r
            o = r["data"]["observation"]
            assert r["data"]["done"] == (o["terminated"] or o["truncated"])
            rewards.append(r["data"]["reward"])
            steps += 1
        assert all(isinstance(x, (int, float)) for x in rewards)
        st = send(ws, {"type": "state"})
        assert st["type"] == "state"
        assert st["data"]["episode_id"] == "py-1" and st["data"]["step_count"] == steps and st["data"]["env_id"] == env_id
        assert st["data"]["seed"] == 7
        # The same seed and kwargs give the same first observation.
        again = send(ws, {"type": "reset", "data": {"seed": 7, **kwargs}})
        assert again["data"]["observation"]["obs"] == first_obs
        ws.send(json.dumps({"type": "close"}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)


def test_errors_carry_openenv_codes_and_the_session_lives_on(server: Server) -> None:
    with connect(ws_url(f"{server.url}/openenv/Echo-v0")) as ws:
        def err(msg: Any) -> dict[str, Any]:
            ws.send(msg if isinstance(msg, str) else json.dumps(msg))
            r = json.loads(ws.recv(timeout=30))
            assert r["type"] == "error", r
            assert r["data"]["code"] in OPENENV_ERROR_CODES and isinstance(r["data"]["message"], str)
            return dict(r["data"])

        assert err("{not json")["code"] == "INVALID_JSON"
        assert err({"type": "nope"})["code"] == "UNKNOWN_TYPE"
        assert err({"type": "step", "data": {"action": 1}})["colloquy_code"] == "RESET_NEEDED"
        assert err({"type": "reset", "data": {"seed": -3}})["code"] == "VALIDATION_ERROR"
        assert err({"type": "reset", "data": {"obsSize": 1}})["code"] == "FACTORY_ERROR"
        assert send(ws, {"type": "reset", "data": {"seed": 1}})["type"] == "observation"
        bad = err({"type": "step", "data": {"action": 16}})
        assert bad["code"] == "VALIDATION_ERROR" and bad["colloquy_code"] == "INVALID_ACTION"
        assert send(ws, {"type": "step", "data": {"action": 15}})["type"] == "observation"


def test_an_unknown_env_id_is_refused_before_the_upgrade(server: Server) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as e:
        connect(ws_url(f"{server.url}/openenv/NoSuchEnv-v0"))
    assert e.value.response.status_code == 404
