"""The protocol client: typed errors, bearer token, heartbeats answered while the caller computes,
pipelining, close twice, the state op, f64 observations."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator

import numpy as np
import pytest

import colloquy
from colloquy import AsyncClient, Client

from conftest import Server, start_server


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[Client]:
    with Client(server.ws_url) as c:
        yield c


def test_coded_errors_are_typed_exceptions(client: Client) -> None:
    s = client.make("Echo-v0", num_envs=2)
    with pytest.raises(colloquy.ResetNeeded):
        s.step([0, 0])
    s.reset(seed=1)
    with pytest.raises(colloquy.InvalidAction) as e:
        s.step([0, 99])
    assert e.value.code == "INVALID_ACTION" and "actions[1]" in e.value.message
    with pytest.raises(colloquy.InvalidAction):
        s.step([0])  # encoded here: the wrong count never leaves the client
    with pytest.raises(colloquy.UnknownEnv) as u:
        client.make("Echo-v1")
    assert u.value.suggestion == "Echo-v0"
    with pytest.raises(colloquy.BadConfig):
        client.make("Echo-v0", {"obsSize": 1})
    with pytest.raises(colloquy.Capacity):
        client.make("Echo-v0", num_envs=5000)
    with pytest.raises(colloquy.BadRequest):
        client.request("reset", session=s.id, seed=-1)
    with pytest.raises(colloquy.UnknownOp):
        client.request("frobnicate")
    with pytest.raises(colloquy.UnknownSession):
        client.request("step", session="nope", actions=[0])
    # All are ColloquyErrors with the server's code; InvalidAction is also a ValueError.
    assert issubclass(colloquy.InvalidAction, ValueError) and issubclass(colloquy.RequestTimeout, TimeoutError)
    s.close()


def test_close_twice_and_state(client: Client) -> None:
    s = client.make("Echo-v0", {"episodeLength": 2})
    s.reset(seed=4)
    s.step([0])
    st = s.state()
    assert st["episodeSteps"] == [1] and st["seeds"] == [4] and st["rng"]["algorithm"] == "sfc32"
    assert client.request("close", session=s.id) == {"closed": True}
    assert client.request("close", session=s.id) == {"closed": True, "alreadyClosed": True}
    s.close()
    s.close()


def test_pipelined_requests_match_by_id(client: Client) -> None:
    a = client.make("Echo-v0", num_envs=2)
    b = client.make("Echo-v0", num_envs=2)
    ra, rb = a.reset_nowait(seed=3), b.reset_nowait(seed=3)
    steps = [(a.step_nowait(np.array([i % 16, 0])), b.step_nowait(np.array([i % 16, 0]))) for i in range(50)]
    assert np.array_equal(ra.result().observations, rb.result().observations)
    for fa, fb in steps:
        x, y = fa.result(), fb.result()
        assert np.array_equal(x.observations, y.observations) and np.array_equal(x.rewards, y.rewards)
    pings = [client.request_nowait("ping") for _ in range(20)]
    assert all(p.result()["pong"] is True for p in pings)
    a.close()
    b.close()


def test_binary_frames_carry_the_json_values(client: Client) -> None:
    """obs_encoding="binary": steps go as binary frames and replies come as binary frames; the
    trajectory is that of a JSON session, bit for bit, and a malformed frame gets a coded error."""
    from colloquy.frames import decode_frame, reply_from_frame, step_frame

    sent: list[Any] = []
    aio = client.aio
    put = aio._out.put_nowait
    aio._out.put_nowait = lambda item: (sent.append(item[1] if item else None), put(item))[1]  # type: ignore[method-assign]
    try:
        j = client.make("Echo-v0", {"obsSize": 5, "episodeLength": 6}, num_envs=3, autoreset_mode="same-step")
        b = client.make("Echo-v0", {"obsSize": 5, "episodeLength": 6}, num_envs=3, autoreset_mode="same-step", obs_encoding="binary")
        assert b.info.obs_encoding == "binary"
        x, y = j.reset(seed=4), b.reset(seed=4)
        assert x.observations.dtype == y.observations.dtype == np.float32
        assert x.observations.tobytes() == y.observations.tobytes() and x.infos == y.infos
        rng = np.random.default_rng(2)
        for _ in range(15):
            a = rng.integers(0, 16, 3)
            sent.clear()
            p, q = j.step(a), b.step(a)
            assert isinstance(sent[0], str) and isinstance(sent[1], str)  # integer actions go as JSON on either session
            assert p.observations.tobytes() == q.observations.tobytes()
            assert p.rewards.tobytes() == q.rewards.tobytes() and q.rewards.dtype == np.float64
            assert p.terminated.tolist() == q.terminated.tolist() and p.truncated.tolist() == q.truncated.tolist()
            assert p.infos == q.infos
        with pytest.raises(colloquy.InvalidAction):
            b.step([0, 1, 99])
        # Float actions go as a binary frame (float64); Echo's Discrete space takes 1.0 as 1.
        sent.clear()

        async def float_step() -> Any:
            return await aio.request("step", session=b.id, actions=[1.0, 2.0, 3.0], _binary=True)

        got = client._call(float_step())
        assert isinstance(sent[0], bytes) and decode_frame(sent[0])[1][0][1].dtype == np.dtype("<f8")
        want = j.step([1, 2, 3])
        assert got["observations"].tobytes() == want.observations.tobytes() and got["rewards"].tobytes() == want.rewards.tobytes()
        j.close()
        b.close()
    finally:
        aio._out.put_nowait = put  # type: ignore[method-assign]
    frame = step_frame(7, "s", [1, 2], ints=True)
    assert frame is not None and step_frame(7, "s", [1, 2]) is None
    assert step_frame(7, "s", ["a"]) is None and step_frame(7, "s", [float("nan")]) is None
    header, arrays = decode_frame(frame)
    assert header == {"id": 7, "op": "step", "session": "s"} and arrays[0][1].tolist() == [1, 2]
    for broken in (frame[:-1], frame + b"\0", frame[:3], b"\xff\xff\xff\x7f{}"):
        with pytest.raises(colloquy.ProtocolError):
            reply_from_frame(broken)


def test_f64_observations_are_the_json_values(client: Client) -> None:
    j = client.make("Echo-v0", {"obsSize": 33}, num_envs=4)
    f = client.make("Echo-v0", {"obsSize": 33}, num_envs=4, obs_encoding="f64")
    assert f.info.obs_encoding == "f64"
    x, y = j.reset(seed=8), f.reset(seed=8)
    assert x.observations.dtype == y.observations.dtype == np.float32
    assert x.observations.tobytes() == y.observations.tobytes()
    for t in range(10):
        a = np.arange(4) + t
        assert j.step(a).observations.tobytes() == f.step(a).observations.tobytes()
    with pytest.raises(colloquy.BadRequest):
        client.make("TeacherStudent-v0", obs_encoding="f64")  # not a Box space
    j.close()
    f.close()


@pytest.fixture(scope="module")
def fast_heartbeat(base_model: str) -> Iterator[Server]:
    s = start_server({"heartbeat": {"intervalMs": 50, "timeoutMs": 250}})
    yield s
    s.stop()


def test_heartbeats_are_answered_while_the_caller_computes(fast_heartbeat: Server) -> None:
    # No pings of the client's own: only answering the server's keeps the connection.
    with Client(fast_heartbeat.ws_url, heartbeat=None) as c:
        s = c.make("Echo-v0")
        s.reset(seed=1)
        time.sleep(1.5)  # "computing": six heartbeat timeouts long
        s.step([0])
        assert c.reconnects == 0


def test_a_blocked_event_loop_is_dropped_and_resumes(fast_heartbeat: Server) -> None:
    """The asyncio client answers pings only while its loop runs; blocked, it is dropped by the
    server's heartbeat, and its next request goes through after resuming."""

    async def main() -> int:
        c = await AsyncClient.connect(fast_heartbeat.ws_url, heartbeat=None)
        s = await c.make("Echo-v0")
        await s.reset(seed=1)
        time.sleep(1.0)  # blocks the loop: no pong
        await asyncio.sleep(0.5)
        await s.step([0])
        n = c.reconnects
        await c.close()
        return n

    assert asyncio.run(main()) == 1


@pytest.fixture(scope="module")
def with_token(base_model: str) -> Iterator[Server]:
    s = start_server({"token": "s3cret"})
    yield s
    s.stop()


def test_bearer_token(with_token: Server) -> None:
    with pytest.raises(colloquy.Unauthorized):
        Client(with_token.ws_url)
    with pytest.raises(colloquy.Unauthorized):
        Client(with_token.ws_url, token="wrong")
    with Client(with_token.ws_url, token="s3cret") as c:
        s = c.make("Echo-v0")
        assert s.reset(seed=1).observations.shape == (1, 8)
    with pytest.raises(colloquy.Unauthorized):
        colloquy.list_envs(with_token.ws_url)
    ids = colloquy.register(with_token.ws_url, token="s3cret", namespace="colloquy-auth")
    assert "colloquy-auth/Echo-v0" in ids
    import gymnasium as gym

    env = gym.make("colloquy-auth/Echo-v0")
    assert env.reset(seed=2)[0].shape == (8,)
    env.close()


def test_closed_client(server: Server) -> None:
    c = Client(server.ws_url)
    s = c.make("Echo-v0")
    c.close()
    c.close()
    with pytest.raises(colloquy.Closed):
        s.reset()
    s.close()  # nothing to do
    with pytest.raises(colloquy.Closed):
        Client("ws://127.0.0.1:9/v1/env", open_timeout=2)
