"""The asyncio client of protocol v1 (``protocol/v1.ts``; the TypeScript twin is ``agents/client.ts``).

    client = await AsyncClient.connect("ws://127.0.0.1:8787/v1/env")
    envs = await client.make("Echo-v0", num_envs=8, obs_encoding="f64")
    r = await envs.reset(seed=42)                 # r.observations: ndarray (8, 8) float32
    r = await envs.step(np.zeros(8, np.int64))
    await client.close()

- Requests are pipelined: :meth:`AsyncClient.request` sends at once and returns a future; replies
  are matched by id, in whatever order they come. Requests on one session run in order on the
  server.
- When the connection drops, the client reconnects with backoff, ``resume``s its sessions with
  their tokens, takes the replies it lost (the server re-sends them) and re-sends the requests the
  server never saw, so a request in flight during a drop completes exactly once.
- The server's pings are answered by the websockets library whenever the event loop runs; a caller
  that computes for long between requests should use the sync client (``colloquy.Client``), whose
  loop runs on its own thread.
- Error replies raise the typed exceptions of :mod:`colloquy.errors`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, InvalidHandshake

from .errors import (
    BadRequest, Closed, ColloquyError, ProtocolError, RequestTimeout, Unauthorized, UnknownSession,
    error_from_body,
)
from .frames import reply_from_frame, step_frame
from .spaces import Space, space_from_json

__all__ = ["AsyncClient", "AsyncSession", "MakeInfo", "ResetResult", "StepResult", "PROTOCOL_VERSION", "normalize_seed"]

PROTOCOL_VERSION = 1


@dataclass
class _Pending:
    id: int
    op: str
    session: str | None
    frame: str | bytes  # bytes: a binary frame (colloquy.frames)
    future: asyncio.Future[Any]
    t0: float
    # Re-sent after a reconnect (the client's own resume requests are not).
    resend: bool = True


@dataclass(frozen=True)
class MakeInfo:
    """What ``make`` (and ``resume``) answered: the session and its env's facts."""

    session: str
    resume_token: str
    num_envs: int
    autoreset_mode: str
    obs_encoding: str
    spec: dict[str, Any] | None
    observation_space: dict[str, Any]
    action_space: dict[str, Any]
    protocol: int
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @staticmethod
    def parse(result: Any) -> "MakeInfo":
        try:
            return MakeInfo(
                session=str(result["session"]), resume_token=str(result["resumeToken"]), num_envs=int(result["numEnvs"]),
                autoreset_mode=str(result["autoresetMode"]), obs_encoding=str(result.get("obsEncoding", "json")),
                spec=result.get("spec"), observation_space=dict(result["observationSpace"]),
                action_space=dict(result["actionSpace"]), protocol=int(result.get("protocol", 1)), raw=dict(result),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"make result is missing fields: {e}") from None


@dataclass
class ResetResult:
    """A vector reset: observations as one batch (``Space.decode_batch``), infos one dict per sub-env."""

    observations: Any
    infos: list[dict[str, Any]]


@dataclass
class StepResult:
    observations: Any
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: list[dict[str, Any]]


def normalize_seed(seed: Any, num_envs: int) -> Any:
    """A reset seed as the wire takes it: None, a non-negative int, or a list of N (int or None).

    Ints beyond 2**53 (not exact as JSON numbers) travel as decimal strings. NumPy integers are
    accepted; bools and negative or fractional numbers are not.
    """
    if seed is None:
        return None
    if isinstance(seed, (list, tuple, np.ndarray)):
        seeds = list(seed)
        if len(seeds) != num_envs:
            raise BadRequest(f"a list of seeds must have one per sub-env ({num_envs}), got {len(seeds)}")
        return [None if s is None else _one_seed(s) for s in seeds]
    return _one_seed(seed)


def _one_seed(s: Any) -> int | str:
    if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
        raise BadRequest(f"a seed must be a non-negative integer, got {s!r}")
    v = int(s)
    if v < 0:
        raise BadRequest(f"a seed must be a non-negative integer, got {v}")
    return v if v <= 2**53 - 1 else str(v)


_DICT, _BOOL, _NUMBER = frozenset({dict}), frozenset({bool}), frozenset({int, float})


class AsyncSession:
    """A vector env of ``num_envs`` sub-envs on the server (one ``make``)."""

    def __init__(self, client: "AsyncClient", made: MakeInfo) -> None:
        self.client = client
        self.info = made
        self.id = made.session
        self.num_envs = made.num_envs
        self.autoreset_mode = made.autoreset_mode
        self.spec = made.spec
        self.observation_space: Space = space_from_json(made.observation_space)
        self.action_space: Space = space_from_json(made.action_space)
        self.closed = False

    def _results(self, r: Any, step: bool) -> Any:
        if not isinstance(r, Mapping):
            raise ProtocolError("reset/step result is not an object")
        n = self.num_envs
        # (A binary reply's arrays come as ndarrays: the same numbers as the JSON lists.)
        obs = self.observation_space.decode_batch(r.get("observations"), n)
        infos = r.get("infos")
        # Type checks by set of types: a few C calls per list, not a Python call per element.
        if not isinstance(infos, list) or len(infos) != n or not set(map(type, infos)) <= _DICT:
            raise ProtocolError(f"expected {n} infos")
        if not step:
            return ResetResult(obs, infos)
        rewards, term, trunc = r.get("rewards"), r.get("terminated"), r.get("truncated")
        for name, v, kinds in (("rewards", rewards, _NUMBER), ("terminated", term, _BOOL), ("truncated", trunc, _BOOL)):
            if isinstance(v, np.ndarray):
                if v.shape != (n,) or (v.dtype.kind == "b") != (kinds is _BOOL):
                    raise ProtocolError(f"expected {n} {name}")
            elif not isinstance(v, list) or len(v) != n or not set(map(type, v)) <= kinds:
                raise ProtocolError(f"expected {n} {name}")
        return StepResult(obs, np.array(rewards, dtype=np.float64), np.array(term, dtype=np.bool_), np.array(trunc, dtype=np.bool_), infos)

    def reset_nowait(self, seed: Any = None, options: Mapping[str, Any] | None = None) -> "asyncio.Future[ResetResult]":
        """Send a reset now; the future resolves to its result (pipelining)."""
        body: dict[str, Any] = {"session": self.id}
        s = normalize_seed(seed, self.num_envs)
        if s is not None:
            body["seed"] = s
        if options is not None:
            body["options"] = dict(options)
        return self._then(self.client.request("reset", **body), step=False)

    def step_nowait(self, actions: Any) -> "asyncio.Future[StepResult]":
        """Send a step now (``actions``: a batch, or a sequence of ``num_envs`` actions)."""
        encoded = self.action_space.encode_batch(actions, self.num_envs)
        binary = self.info.obs_encoding == "binary"
        return self._then(self.client.request("step", session=self.id, actions=encoded, _binary=binary), step=True)

    def _then(self, fut: "asyncio.Future[Any]", step: bool) -> "asyncio.Future[Any]":
        out: asyncio.Future[Any] = fut.get_loop().create_future()

        def done(f: asyncio.Future[Any]) -> None:
            if out.cancelled():
                return
            if f.cancelled():
                out.cancel()
            elif f.exception() is not None:
                out.set_exception(f.exception())  # type: ignore[arg-type]
            else:
                try:
                    out.set_result(self._results(f.result(), step))
                except ColloquyError as e:
                    out.set_exception(e)
        fut.add_done_callback(done)
        return out

    async def reset(self, seed: Any = None, options: Mapping[str, Any] | None = None) -> ResetResult:
        return await self.reset_nowait(seed, options)

    async def step(self, actions: Any) -> StepResult:
        return await self.step_nowait(actions)

    async def state(self) -> dict[str, Any]:
        """The session's state as the server reports it (the ``state`` op)."""
        r = await self.client.request("state", session=self.id)
        if not isinstance(r, dict):
            raise ProtocolError("state result is not an object")
        return r

    async def close(self) -> None:
        """Close the session; a second close (or one after the server closed it) does nothing."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.client.request("close", session=self.id)
        except (UnknownSession, Closed):
            pass


def _http_error(e: InvalidStatus) -> ColloquyError:
    status = e.response.status_code
    body: Any = None
    try:
        body = json.loads(e.response.body or b"{}").get("error")
    except (ValueError, AttributeError):
        pass
    if status == 401:
        message = body.get("message") if isinstance(body, dict) else None
        return Unauthorized(message if isinstance(message, str) else "the server wants a bearer token")
    if isinstance(body, dict):
        err = error_from_body(body)
        if not isinstance(err, ProtocolError):
            return err
    if status == 503:
        return Closed(f"the server answered the upgrade with HTTP {status}")
    return ColloquyError(f"the server answered the upgrade with HTTP {status}", code="INTERNAL")


class AsyncClient:
    """One WebSocket connection speaking protocol v1, with pipelining, reconnect and resume."""

    def __init__(
        self, url: str, *, token: str | None = None, reconnect: bool = True, reconnect_attempts: int = 10,
        initial_delay: float = 0.1, max_delay: float = 5.0, request_timeout: float | None = 300.0,
        heartbeat: float | None = 20.0, open_timeout: float = 10.0,
        on_reconnect: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.reconnect_enabled = reconnect
        self.reconnect_attempts = reconnect_attempts
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.request_timeout = request_timeout
        self.heartbeat = heartbeat
        self.open_timeout = open_timeout
        self.on_reconnect = on_reconnect
        self._ws: ClientConnection | None = None
        self._next_id = 1
        self._pending: dict[int, _Pending] = {}
        self._tokens: dict[str, str] = {}
        self._out: asyncio.Queue[tuple[ClientConnection, str | bytes] | None] = asyncio.Queue()
        self._closing = False
        self._dead: ColloquyError | None = None
        self._holding = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._reconnecting: asyncio.Task[None] | None = None
        self.reconnects = 0

    # ---- connecting ----

    @classmethod
    async def connect(cls, url: str, **options: Any) -> "AsyncClient":
        c = cls(url, **options)
        c._attach(await c._open())
        c._tasks.append(asyncio.ensure_future(c._writer()))
        if c.request_timeout:
            c._tasks.append(asyncio.ensure_future(c._sweeper()))
        return c

    async def _open(self) -> ClientConnection:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            return await ws_connect(
                self.url, additional_headers=headers, compression=None, max_size=None, max_queue=None,
                ping_interval=self.heartbeat, ping_timeout=None if self.heartbeat is None else 3 * self.heartbeat,
                open_timeout=self.open_timeout, close_timeout=2,
            )
        except InvalidStatus as e:
            raise _http_error(e) from None
        except InvalidURI as e:
            raise BadRequest(f"not a WebSocket URL: {self.url} ({e})") from None
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as e:
            raise Closed(f"cannot connect to {self.url}: {e}") from None

    def _attach(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._tasks.append(asyncio.ensure_future(self._reader(ws)))

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._holding and self._ws.state.name == "OPEN"

    @property
    def sessions(self) -> list[str]:
        """Sessions this client would resume after a drop."""
        return list(self._tokens)

    # ---- requests ----

    def request(self, op: str, **fields: Any) -> "asyncio.Future[Any]":
        """Send a request now; the future resolves to its result or fails with the typed error."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._closing:
            fut.set_exception(Closed("client is closed"))
            return fut
        if self._dead is not None:
            fut.set_exception(self._dead)
            return fut
        binary = bool(fields.pop("_binary", False))
        return self._send(op, fields, fut, resend=True, binary=binary)

    def _send(self, op: str, fields: Mapping[str, Any], fut: "asyncio.Future[Any]", resend: bool, binary: bool = False) -> "asyncio.Future[Any]":
        rid = self._next_id
        self._next_id += 1
        try:
            # binary: a step as a binary frame when its actions are numbers (else JSON, as always).
            frame: str | bytes | None = step_frame(rid, fields["session"], fields["actions"]) if binary and op == "step" else None
            # The id first: the server can answer a frame too large to parse with its id.
            if frame is None:
                frame = json.dumps({"id": rid, "op": op, **fields}, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            fut.set_exception(BadRequest(f"request is not JSON: {e}"))
            return fut
        self._pending[rid] = _Pending(rid, op, fields.get("session"), frame, fut, time.monotonic(), resend)
        # While reconnecting, requests wait and go once the sessions are resumed.
        if self._ws is not None and (not self._holding or not resend):
            self._out.put_nowait((self._ws, frame))
        return fut

    async def _writer(self) -> None:
        while True:
            item = await self._out.get()
            if item is None:
                return
            ws, frame = item
            if ws is not self._ws:
                continue  # the connection it was meant for is gone; the resume logic re-sends
            try:
                await ws.send(frame)
            except ConnectionClosed:
                pass  # the reader sees the close and reconnects

    async def _reader(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                self._on_message(data)
        except ConnectionClosed:
            pass
        finally:
            self._on_close(ws)

    def _on_message(self, data: str | bytes) -> None:
        try:
            msg = reply_from_frame(data) if isinstance(data, bytes) else json.loads(data)
        except (ValueError, ProtocolError):
            return
        if not isinstance(msg, dict):
            return
        rid = msg.get("id")
        p = self._pending.pop(rid, None) if isinstance(rid, int) and not isinstance(rid, bool) else None
        if p is None:
            return  # a reply we gave up on, or an error without an id
        if p.future.done():
            return
        if msg.get("ok") is True:
            result = msg.get("result")
            if p.op == "make" and isinstance(result, dict) and isinstance(result.get("session"), str):
                self._tokens[result["session"]] = str(result.get("resumeToken"))
            elif p.op == "close" and p.session:
                self._tokens.pop(p.session, None)
            p.future.set_result(result)
        else:
            if p.op == "close" and p.session:
                self._tokens.pop(p.session, None)
            p.future.set_exception(error_from_body(msg.get("error")))

    async def _sweeper(self) -> None:
        timeout = float(self.request_timeout or 0)
        every = min(1.0, max(0.01, timeout / 4))
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            for p in list(self._pending.values()):
                if now - p.t0 < timeout:
                    break
                del self._pending[p.id]
                if not p.future.done():
                    p.future.set_exception(RequestTimeout(f"no reply to '{p.op}' within {timeout:g} s"))

    # ---- drops, reconnect, resume ----

    def _on_close(self, ws: ClientConnection) -> None:
        if self._ws is not ws:
            return
        self._ws = None
        if self._closing:
            self._reject_all(Closed("client is closed"))
            return
        if not self.reconnect_enabled:
            self._dead = Closed(f"lost the connection to {self.url}")
            self._reject_all(self._dead)
            return
        # The client's own resume requests die with their connection; the reconnect loop retries.
        for p in list(self._pending.values()):
            if not p.resend:
                del self._pending[p.id]
                if not p.future.done():
                    p.future.set_exception(Closed("connection lost"))
        self._holding = True
        if self._reconnecting is None:
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delay = self.initial_delay
        last: Exception | None = None
        try:
            for attempt in range(1, self.reconnect_attempts + 1):
                if self._closing:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
                try:
                    ws = await self._open()
                except Unauthorized as e:
                    last = e
                    break
                except ColloquyError as e:
                    last = e
                    continue
                if self._closing:
                    await ws.close()
                    break
                self._attach(ws)
                try:
                    info = await self._resume_all(ws)
                except (ColloquyError, ConnectionClosed) as e:
                    last = e
                    if self._ws is ws:
                        self._ws = None
                    await ws.close()
                    continue
                self._holding = False
                self.reconnects += 1
                if self.on_reconnect:
                    self.on_reconnect({"attempt": attempt, **info})
                return
            self._holding = False
            self._dead = Closed(f"lost the connection to {self.url} and could not reconnect" + (f": {last}" if last else ""))
            self._reject_all(self._dead)
        finally:
            self._reconnecting = None

    async def _resume_all(self, ws: ClientConnection) -> dict[str, Any]:
        resumed: list[str] = []
        lost_sessions: list[str] = []
        skip: set[int] = set()
        for session, token in list(self._tokens.items()):
            ids = [p.id for p in self._pending.values() if p.session == session and p.resend]
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._send("resume", {"session": session, "token": token, "pending": ids}, fut, resend=False)
            try:
                r = await fut
            except UnknownSession as e:
                # The server closed it (resume window elapsed): its requests cannot succeed.
                self._tokens.pop(session, None)
                lost_sessions.append(session)
                for i in ids:
                    p = self._pending.pop(i, None)
                    if p and not p.future.done():
                        p.future.set_exception(e)
                continue
            # A token works once: the reply carries the next one.
            if isinstance(r.get("resumeToken"), str):
                self._tokens[session] = r["resumeToken"]
            resumed.append(session)
            for i in list(r.get("replayed", [])) + list(r.get("inFlight", [])):
                if isinstance(i, int):
                    skip.add(i)
            for i in r.get("lost", []) or []:
                p = self._pending.pop(i, None) if isinstance(i, int) else None
                if p and not p.future.done():
                    p.future.set_exception(RequestTimeout(
                        f"the reply to '{p.op}' was lost with the connection and is no longer stored on the server; "
                        "the session's state is unknown: reset it"))
        if self._ws is not ws:
            raise Closed("connection lost while resuming")
        # Everything the server never saw goes again, in the original order.
        for p in sorted(self._pending.values(), key=lambda p: p.id):
            if p.resend and p.id not in skip:
                self._out.put_nowait((ws, p.frame))
        return {"resumed": resumed, "lost": lost_sessions}

    def _reject_all(self, err: ColloquyError) -> None:
        pending = list(self._pending.values())
        self._pending.clear()
        for p in pending:
            if not p.future.done():
                p.future.set_exception(err)

    # ---- conveniences ----

    async def make(
        self, env: str, kwargs: Mapping[str, Any] | None = None, *, num_envs: int = 1,
        autoreset_mode: str | None = None, obs_encoding: str | None = None,
    ) -> AsyncSession:
        """Make a vector env session (``obs_encoding="f64"``: Box observations travel packed; ``"binary"``: replies and steps as binary frames, colloquy.frames)."""
        body: dict[str, Any] = {"env": env, "numEnvs": int(num_envs)}
        if kwargs is not None:
            body["kwargs"] = dict(kwargs)
        if autoreset_mode is not None:
            body["autoresetMode"] = autoreset_mode
        if obs_encoding is not None:
            body["obsEncoding"] = obs_encoding
        return AsyncSession(self, MakeInfo.parse(await self.request("make", **body)))

    async def ping(self) -> float:
        """Round trip time of a ``ping`` request, in seconds."""
        t0 = time.perf_counter()
        await self.request("ping")
        return time.perf_counter() - t0

    def drop_connection(self) -> None:
        """Drop the TCP connection without a close handshake (tests of resume)."""
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    async def close(self) -> None:
        """Close the connection (sessions left open are closed by the server after its resume window)."""
        if self._closing:
            return
        self._closing = True
        ws = self._ws
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if ws is not None:
            await ws.close()
        self._reject_all(Closed("client is closed"))
        self._out.put_nowait(None)
        for t in self._tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def http_base(url: str) -> str:
    """The http(s) base of a server from its ws(s) URL (``ws://h:p/v1/env`` → ``http://h:p``)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path
    if path.endswith("/v1/env"):
        path = path[: -len("/v1/env")]
    return urlunsplit((scheme, parts.netloc, path.rstrip("/"), "", ""))


def ws_url(url: str) -> str:
    """The protocol's WebSocket URL from a server's base URL or WebSocket URL."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if not path.endswith("/v1/env"):
        path += "/v1/env"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))
