"""Gymnasium envs over protocol v1: :class:`ColloquyEnv` (one sub-env) and :class:`ColloquyVectorEnv`.

    import gymnasium as gym, colloquy
    colloquy.register("ws://127.0.0.1:8787/v1/env")      # colloquy/Echo-v0, colloquy/TeacherStudent-v0, ...
    env = gym.make("colloquy/Echo-v0")
    envs = gym.make_vec("colloquy/Echo-v0", num_envs=8)  # one server session of 8 sub-envs

Spaces are gymnasium spaces built from the server's JSON spaces and observations have exactly their
dtypes and shapes. Seeding is the server's: ``reset(seed=s)`` gives the trajectory the same seed gives
in process and through the TypeScript client, bit for bit (a vector env seeds sub-env i with
``s + i``, or takes a list of per-env seeds, as Gymnasium does). ``np_random`` is this client's own
generator, seeded from the same seed (gymnasium's contract); the env's random streams live on the
server (``state()["rng"]`` says how it reads a seed).

This module needs gymnasium (``pip install 'colloquy[gymnasium]'``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any, Mapping, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces as gspaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import spaces as cspaces
from .aio import http_base, ws_url
from .errors import BadConfig, Closed, ColloquyError, Unauthorized, error_from_body
from .sync import Client, Session

__all__ = ["ColloquyEnv", "ColloquyVectorEnv", "ColloquyText", "to_gymnasium", "register", "list_envs", "DEFAULT_URL"]

#: Where ``npm start`` listens (``COLLOQUY_URL`` overrides it).
DEFAULT_URL = os.environ.get("COLLOQUY_URL", "ws://127.0.0.1:8787/v1/env")

# The server's Text.sample alphabet (env/spaces.ts).
_SAMPLE_CHARSET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!"


class ColloquyText(gspaces.Text):
    """The server's Text space: strings of ``min_length``..``max_length`` characters, from
    ``charset`` when the server declares one, else any characters (a transcript, an utterance).

    ``sample()`` draws as the server's ``Text.sample`` does: at most 32 characters more than
    ``min_length``, from ``charset`` or the server's sample alphabet (gymnasium's Text draws a
    length up to ``max_length``, which for an utterance space is mostly longer than any dialog
    turn).
    """

    def __init__(self, max_length: int, *, min_length: int = 0, charset: str | None = None, seed: Any = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=charset or _SAMPLE_CHARSET, seed=seed)
        self.any_char = charset is None

    def contains(self, x: Any) -> bool:
        if not isinstance(x, str) or not self.min_length <= len(x) <= self.max_length:
            return False
        return self.any_char or all(c in self.character_set for c in x)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        top = min(self.max_length, self.min_length + 32)
        n = int(self.np_random.integers(self.min_length, top + 1))
        chars = self.character_list
        return "".join(chars[i] for i in self.np_random.integers(0, len(chars), size=n))

    def __repr__(self) -> str:
        cs = "any" if self.any_char else self.characters
        return f"ColloquyText({self.min_length}, {self.max_length}, charset={cs})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ColloquyText) and other.any_char == self.any_char and super().__eq__(other)

    def __hash__(self) -> int:
        return hash((self.min_length, self.max_length, self.any_char, self.characters))


def _bound(a: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    # Bounds in the Box's own dtype when they are exact in it (gymnasium warns about a lossy cast,
    # which only a bound that really is not representable should trigger).
    if not np.all(np.isfinite(a)) and dtype.kind != "f":
        return a.copy()
    c = a.astype(dtype)
    return c if np.array_equal(c.astype(np.float64), a) else a.copy()


def to_gymnasium(space: cspaces.Space | Mapping[str, Any]) -> gspaces.Space[Any]:
    """The gymnasium space of a server space (a :mod:`colloquy.spaces` space or its JSON)."""
    s = space if isinstance(space, cspaces.Space) else cspaces.space_from_json(space)
    if isinstance(s, cspaces.Box):
        return gspaces.Box(low=_bound(s.low, s.dtype), high=_bound(s.high, s.dtype), shape=s.shape, dtype=s.dtype.type)  # type: ignore[arg-type]
    if isinstance(s, cspaces.Discrete):
        return gspaces.Discrete(s.n, start=s.start)
    if isinstance(s, cspaces.MultiDiscrete):
        return gspaces.MultiDiscrete(s.nvec.copy())
    if isinstance(s, cspaces.Text):
        return ColloquyText(s.max_length, min_length=s.min_length, charset=s.charset)
    if isinstance(s, cspaces.Dict):
        return gspaces.Dict({k: to_gymnasium(v) for k, v in s.spaces.items()})
    if isinstance(s, cspaces.Tuple):
        return gspaces.Tuple([to_gymnasium(v) for v in s.spaces])
    raise BadConfig(f"no gymnasium space for {s!r}")


def _client(url: str, token: str | None, client: Client | None, options: Mapping[str, Any]) -> tuple[Client, bool]:
    if client is not None:
        return client, False
    return Client(ws_url(url), token=token if token is not None else os.environ.get("COLLOQUY_TOKEN") or None, **options), True


class ColloquyEnv(gymnasium.Env[Any, Any]):
    """One env on a Colloquy server: a session of one sub-env without autoreset, so that, like a
    local env, a step after the episode ended raises :class:`~colloquy.errors.ResetNeeded`.

    ``kwargs``: the env's kwargs (validated by the server); ``obs_encoding="f64"``: Box observations
    travel packed; ``client``: share one connection among envs; other keywords go to
    :class:`colloquy.Client` (``reconnect``, ``request_timeout``, ``heartbeat``, ...).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, env_id: str, url: str = DEFAULT_URL, *, kwargs: Mapping[str, Any] | None = None,
                 token: str | None = None, obs_encoding: str | None = None, client: Client | None = None,
                 render_mode: str | None = None, **client_options: Any) -> None:
        if render_mode is not None:
            raise BadConfig(f"Colloquy envs have no render modes (got {render_mode!r})")
        self._client, self._owns_client = _client(url, token, client, client_options)
        try:
            self.session: Session = self._client.make(env_id, kwargs, num_envs=1, autoreset_mode="disabled", obs_encoding=obs_encoding)
        except BaseException:
            if self._owns_client:
                self._client.close()
            raise
        self.env_id = env_id
        #: The server's spec of the env (kwargs with defaults, maxEpisodeSteps, deterministic, ...).
        self.server_spec: dict[str, Any] | None = self.session.spec
        self._obs = self.session.observation_space
        self.observation_space = to_gymnasium(self._obs)
        self.action_space = to_gymnasium(self.session.action_space)
        self.render_mode = None
        self._closed = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        r = self.session.reset(seed=seed, options=options)
        return self._obs.item(r.observations, 0), r.infos[0]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        r = self.session.step([action])
        return self._obs.item(r.observations, 0), float(r.rewards[0]), bool(r.terminated[0]), bool(r.truncated[0]), r.infos[0]

    def state(self) -> dict[str, Any]:
        """The session's state on the server (episode, steps, seeds, RNG facts)."""
        return self.session.state()

    def render(self) -> None:
        return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.session.close()
        except Closed:
            pass
        finally:
            if self._owns_client:
                self._client.close()
        super().close()


_MODES = {
    AutoresetMode.NEXT_STEP: "next-step", AutoresetMode.SAME_STEP: "same-step", AutoresetMode.DISABLED: "disabled",
}


def _mode(m: Any) -> AutoresetMode:
    if isinstance(m, AutoresetMode):
        return m
    for k, v in _MODES.items():
        if m in (k.value, v, k.name):
            return k
    raise BadConfig(f"unknown autoreset mode {m!r}; one of {[k.value for k in _MODES]}")


class ColloquyVectorEnv(VectorEnv[Any, Any, Any]):
    """N sub-envs in one server session, stepped in one request, as a gymnasium ``VectorEnv``.

    Autoreset modes as Gymnasium 1.x (``metadata["autoreset_mode"]``): next-step (default; the
    step after an episode ended resets that sub-env, ignoring its action, reward 0), same-step
    (``infos["final_obs"]`` / ``infos["final_info"]``), disabled (``reset(options={"reset_mask": m})``).
    Results are what ``gymnasium.vector.SyncVectorEnv`` over N ``ColloquyEnv`` gives.
    """

    def __init__(self, env_id: str, num_envs: int = 1, url: str = DEFAULT_URL, *, kwargs: Mapping[str, Any] | None = None,
                 autoreset_mode: Any = AutoresetMode.NEXT_STEP, token: str | None = None, obs_encoding: str | None = None,
                 client: Client | None = None, render_mode: str | None = None, **client_options: Any) -> None:
        if render_mode is not None:
            raise BadConfig(f"Colloquy envs have no render modes (got {render_mode!r})")
        mode = _mode(autoreset_mode)
        self._client, self._owns_client = _client(url, token, client, client_options)
        try:
            self.session: Session = self._client.make(env_id, kwargs, num_envs=num_envs, autoreset_mode=_MODES[mode], obs_encoding=obs_encoding)
        except BaseException:
            if self._owns_client:
                self._client.close()
            raise
        self.env_id = env_id
        self.server_spec: dict[str, Any] | None = self.session.spec
        self.num_envs = self.session.num_envs
        self._obs = self.session.observation_space
        self.single_observation_space = to_gymnasium(self._obs)
        self.single_action_space = to_gymnasium(self.session.action_space)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": mode, "render_modes": []}
        self.render_mode = None
        self.autoreset_mode = mode

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            super().reset(seed=int(seed))
        opts = dict(options) if options else None
        if opts is not None and "reset_mask" in opts:
            mask = np.asarray(opts.pop("reset_mask"))
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise BadConfig(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
            opts["resetMask"] = mask.tolist()
        r = self.session.reset(seed=seed, options=opts)
        infos: dict[str, Any] = {}
        for i, info in enumerate(r.infos):
            if opts is None or "resetMask" not in opts or opts["resetMask"][i]:
                infos = self._add_info(infos, info, i)
        return r.observations, infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        r = self.session.step(actions)
        infos: dict[str, Any] = {}
        next_step = self.autoreset_mode is AutoresetMode.NEXT_STEP
        for i, info in enumerate(r.infos):
            if next_step and info.get("autoreset") is True:
                info = {k: v for k, v in info.items() if k != "autoreset"}
            elif "finalObservation" in info and (r.terminated[i] or r.truncated[i]):
                info = dict(info)
                final = {"final_obs": self._obs.decode(info.pop("finalObservation")), "final_info": info.pop("finalInfo", {})}
                infos = self._add_info(infos, final, i)
            infos = self._add_info(infos, info, i)
        return r.observations, r.rewards, r.terminated, r.truncated, infos

    def state(self) -> dict[str, Any]:
        return self.session.state()

    def render(self) -> None:
        return None

    def close_extras(self, **kwargs: Any) -> None:
        try:
            self.session.close()
        except Closed:
            pass
        finally:
            if self._owns_client:
                self._client.close()


def list_envs(url: str = DEFAULT_URL, *, token: str | None = None, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The server's envs (``GET /v1/envs``): id, spec and spaces of each."""
    token = token if token is not None else os.environ.get("COLLOQUY_TOKEN") or None
    req = urllib.request.Request(http_base(url) + "/v1/envs", headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            body = json.loads(res.read())
    except urllib.error.HTTPError as e:
        try:
            err = error_from_body(json.loads(e.read()).get("error"))
        except (ValueError, AttributeError):
            err = None
        if e.code == 401:
            raise Unauthorized(err.message if err else "the server wants a bearer token") from None
        raise (err if isinstance(err, ColloquyError) else ColloquyError(f"GET /v1/envs answered HTTP {e.code}")) from None
    except (urllib.error.URLError, OSError) as e:
        raise Closed(f"cannot reach {http_base(url)}: {e}") from None
    envs = body.get("envs") if isinstance(body, dict) else None
    if not isinstance(envs, list):
        raise ColloquyError("GET /v1/envs did not list envs", code="PROTOCOL")
    return envs


def register(url: str = DEFAULT_URL, *, token: str | None = None, namespace: str | None = "colloquy",
             ids: Sequence[str] | None = None, **env_options: Any) -> list[str]:
    """Register the server's env ids with gymnasium (``gymnasium.make("colloquy/Echo-v0")``).

    ``namespace=None`` registers the bare ids. ``token`` is kept in the registered kwargs (leave it
    out to read ``COLLOQUY_TOKEN`` when an env is made); ``env_options`` (``obs_encoding``,
    ``request_timeout``, ...) too. Registering again replaces the earlier registration. Returns
    the gymnasium ids.
    """
    out: list[str] = []
    for listing in list_envs(url, token=token):
        env_id = listing.get("id")
        if not isinstance(env_id, str) or (ids is not None and env_id not in ids):
            continue
        spec = listing.get("spec") or {}
        gid = f"{namespace}/{env_id}" if namespace else env_id
        kwargs: dict[str, Any] = {"env_id": env_id, "url": ws_url(url), **env_options}
        if token is not None:
            kwargs["token"] = token
        if gid in gymnasium.registry:
            del gymnasium.registry[gid]
        gymnasium.register(
            id=gid, entry_point="colloquy.gym:ColloquyEnv", vector_entry_point="colloquy.gym:ColloquyVectorEnv",
            # The server applies the env's own step cap (spec.maxEpisodeSteps); a second TimeLimit
            # here would only repeat it.
            max_episode_steps=None, nondeterministic=not spec.get("deterministic", True),
            reward_threshold=spec.get("rewardThreshold"), kwargs=kwargs,
        )
        out.append(gid)
    return out
