"""The blocking client: the asyncio client (:mod:`colloquy.aio`) on an event loop of its own thread.

    with colloquy.Client("ws://127.0.0.1:8787/v1/env") as client:
        envs = client.make("Echo-v0", num_envs=8)
        r = envs.reset(seed=42)
        r = envs.step([0] * 8)

The loop thread keeps reading the socket while the caller computes, so the server's heartbeat
pings are answered however long the caller takes between steps. ``*_nowait`` methods return a
``concurrent.futures.Future`` at once (pipelining: several requests in flight, on one session or
several).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, Coroutine, Mapping, TypeVar

from .aio import AsyncClient, AsyncSession, MakeInfo, ResetResult, StepResult
from .errors import Closed
from .spaces import Space

__all__ = ["Client", "Session"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="colloquy-client", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            if threading.current_thread() is not self._thread:
                self._thread.join(5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


async def _wait(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


class Session:
    """A vector env session on the server, blocking (see :class:`colloquy.aio.AsyncSession`)."""

    def __init__(self, client: "Client", inner: AsyncSession) -> None:
        self.client = client
        self._inner = inner

    @property
    def id(self) -> str:
        return self._inner.id

    @property
    def info(self) -> MakeInfo:
        return self._inner.info

    @property
    def num_envs(self) -> int:
        return self._inner.num_envs

    @property
    def autoreset_mode(self) -> str:
        return self._inner.autoreset_mode

    @property
    def spec(self) -> dict[str, Any] | None:
        return self._inner.spec

    @property
    def observation_space(self) -> Space:
        return self._inner.observation_space

    @property
    def action_space(self) -> Space:
        return self._inner.action_space

    @property
    def closed(self) -> bool:
        return self._inner.closed

    def reset_nowait(self, seed: Any = None, options: Mapping[str, Any] | None = None) -> "concurrent.futures.Future[ResetResult]":
        return self.client._submit(lambda: self._inner.reset_nowait(seed, options))

    def step_nowait(self, actions: Any) -> "concurrent.futures.Future[StepResult]":
        return self.client._submit(lambda: self._inner.step_nowait(actions))

    def reset(self, seed: Any = None, options: Mapping[str, Any] | None = None) -> ResetResult:
        return self.reset_nowait(seed, options).result()

    def step(self, actions: Any) -> StepResult:
        return self.step_nowait(actions).result()

    def state(self) -> dict[str, Any]:
        return self.client._call(self._inner.state())

    def close(self) -> None:
        """Close the session (twice is fine; so is after the client closed)."""
        if self._inner.closed or self.client.closed:
            self._inner.closed = True
            return
        self.client._call(self._inner.close())


class Client:
    """A blocking protocol v1 client; options as :class:`colloquy.aio.AsyncClient`."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self._loop = _LoopThread()
        self.closed = False
        try:
            self._aio: AsyncClient = self._loop.call(AsyncClient.connect(url, **options))
        except BaseException:
            self._loop.stop()
            self.closed = True
            raise

    @property
    def aio(self) -> AsyncClient:
        """The asyncio client underneath (its methods must run on this client's loop)."""
        return self._aio

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop.loop

    def _submit(self, start: Callable[[], Awaitable[T]]) -> "concurrent.futures.Future[T]":
        if self.closed:
            f: concurrent.futures.Future[T] = concurrent.futures.Future()
            f.set_exception(Closed("client is closed"))
            return f
        return self._loop.submit(_wait(start))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.closed:
            coro.close()
            raise Closed("client is closed")
        return self._loop.call(coro)

    def request_nowait(self, op: str, **fields: Any) -> "concurrent.futures.Future[Any]":
        """Send a raw protocol request; the future resolves to its result."""
        return self._submit(lambda: self._aio.request(op, **fields))

    def request(self, op: str, **fields: Any) -> Any:
        return self.request_nowait(op, **fields).result()

    def make(self, env: str, kwargs: Mapping[str, Any] | None = None, *, num_envs: int = 1,
             autoreset_mode: str | None = None, obs_encoding: str | None = None) -> Session:
        inner = self._call(self._aio.make(env, kwargs, num_envs=num_envs, autoreset_mode=autoreset_mode, obs_encoding=obs_encoding))
        return Session(self, inner)

    def ping(self) -> float:
        return self._call(self._aio.ping())

    @property
    def connected(self) -> bool:
        return self._aio.connected

    @property
    def reconnects(self) -> int:
        return self._aio.reconnects

    def drop_connection(self) -> None:
        """Drop the TCP connection without a close handshake (tests of resume)."""
        self._loop.loop.call_soon_threadsafe(self._aio.drop_connection)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._loop.call(self._aio.close(), timeout=10)
        finally:
            self._loop.stop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
