"""Reconnect and resume after a dropped socket: requests in flight complete exactly once, the
trajectory is the one without the drop, and a session the server has closed meanwhile fails with
UnknownSession."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator

import numpy as np
import pytest

import colloquy
from colloquy import AsyncClient, Client

from conftest import Server, start_server

KW = {"episodeLength": 6, "obsSize": 5}
ACTIONS = [np.array([t % 16, (5 * t) % 16]) for t in range(40)]


def reference(url: str, steps: int) -> list[Any]:
    with Client(url) as c:
        s = c.make("Echo-v0", KW, num_envs=2)
        out = [s.reset(seed=21)] + [s.step(a) for a in ACTIONS[:steps]]
        s.close()
    return out


def same_results(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b)):
        assert np.array_equal(x.observations, y.observations), t
        assert x.infos == y.infos, t
        if hasattr(x, "rewards"):
            assert np.array_equal(x.rewards, y.rewards) and np.array_equal(x.terminated, y.terminated), t


def test_drop_between_steps(server: Server) -> None:
    want = reference(server.ws_url, 20)
    seen: list[dict[str, Any]] = []
    with Client(server.ws_url, on_reconnect=seen.append) as c:
        s = c.make("Echo-v0", KW, num_envs=2)
        got = [s.reset(seed=21)] + [s.step(a) for a in ACTIONS[:10]]
        c.drop_connection()
        got += [s.step(a) for a in ACTIONS[10:20]]
        assert c.reconnects == 1 and seen[0]["resumed"] == [s.id]
        assert s.state()["steps"] == 20
        s.close()
    same_results(got, want)


def test_drop_with_pipelined_requests_in_flight(server: Server) -> None:
    want = reference(server.ws_url, 40)
    with Client(server.ws_url) as c:
        s = c.make("Echo-v0", KW, num_envs=2)
        futures = [s.reset_nowait(seed=21)] + [s.step_nowait(a) for a in ACTIONS[:20]]
        c.drop_connection()  # some of these are answered, some queued, some not yet sent
        futures += [s.step_nowait(a) for a in ACTIONS[20:40]]
        got = [f.result(30) for f in futures]
        assert c.reconnects == 1
        # Exactly once: the server ran 40 steps, no more.
        assert s.state()["steps"] == 40
        s.close()
    same_results(got, want)


def test_asyncio_client_resumes(server: Server) -> None:
    want = reference(server.ws_url, 12)

    async def main() -> list[Any]:
        c = await AsyncClient.connect(server.ws_url)
        s = await c.make("Echo-v0", KW, num_envs=2)
        out = [await s.reset(seed=21)]
        pending = [s.step_nowait(a) for a in ACTIONS[:6]]
        c.drop_connection()
        out += await asyncio.gather(*pending)
        for a in ACTIONS[6:12]:
            out.append(await s.step(a))
        assert c.reconnects == 1
        await s.close()
        await c.close()
        return out

    same_results(asyncio.run(main()), want)


@pytest.fixture(scope="module")
def short_window(base_model: str) -> Iterator[Server]:
    s = start_server({"sessions": {"resumeWindowMs": 100, "reapIntervalMs": 20}})
    yield s
    s.stop()


def test_session_closed_during_the_drop_is_unknown(short_window: Server) -> None:
    with Client(short_window.ws_url, initial_delay=0.8) as c:
        s = c.make("Echo-v0", KW, num_envs=2)
        s.reset(seed=1)
        c.drop_connection()
        time.sleep(0.2)
        with pytest.raises(colloquy.UnknownSession):
            s.step(ACTIONS[0])
        # The connection itself is back: new sessions work.
        s2 = c.make("Echo-v0")
        s2.reset(seed=1)
        s2.close()
        s.close()  # closing a session the server already closed is fine


def test_resume_token_rotates_and_the_client_keeps_it(server: Server) -> None:
    # A resume token works once (the server answers a new one each resume): a client that kept
    # the token of `make` could not resume a second time.
    want = reference(server.ws_url, 12)
    with Client(server.ws_url) as c:
        s = c.make("Echo-v0", KW, num_envs=2)
        got = [s.reset(seed=21)]
        for k in range(3):
            c.drop_connection()
            got += [s.step(a) for a in ACTIONS[4 * k:4 * k + 4]]
        assert c.reconnects == 3
        s.close()
    same_results(got, want)
