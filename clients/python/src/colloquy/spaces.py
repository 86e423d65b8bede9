"""The server's JSON spaces (``env/spaces.ts``), read into descriptions that decode observations
and encode actions, without gymnasium (``colloquy.gym`` turns them into gymnasium spaces).

Decoded values have exactly the declared types, the layout gymnasium uses:

==============  ===============================  ==========================================
JSON space      one value                        a batch of N (``decode_batch``)
==============  ===============================  ==========================================
Box             ndarray of ``shape``, ``dtype``   ndarray ``(N, *shape)``
Discrete        ``np.int64``                     ndarray ``(N,)`` int64
MultiDiscrete   ndarray ``(k,)`` int64           ndarray ``(N, k)`` int64
Text            ``str``                          tuple of N ``str``
Dict            dict (keys sorted)               dict of batches
Tuple           tuple                            tuple of batches
==============  ===============================  ==========================================

Anything from the wire that does not fit its space raises :class:`~colloquy.errors.ProtocolError`
(never a bare ``ValueError`` or ``KeyError``); an action that cannot be encoded for its space
raises :class:`~colloquy.errors.InvalidAction` before anything is sent.
"""

from __future__ import annotations

import base64
import binascii
import math
import operator
from typing import Any, Mapping

import numpy as np

from .errors import BadConfig, InvalidAction, ProtocolError

__all__ = [
    "Space", "Box", "Discrete", "MultiDiscrete", "Text", "Dict", "Tuple",
    "space_from_json", "unpack_f64", "JSON_INF",
]

#: JSON has no infinities: the server writes ±Infinity in Box bounds as ±1e308.
JSON_INF = 1e308

_BOX_DTYPES = {"float32": np.float32, "float64": np.float64, "int32": np.int32}


def _fail(what: str, value: Any) -> ProtocolError:
    text = repr(value)
    return ProtocolError(f"{what}: {text[:120]}{'...' if len(text) > 120 else ''}")


class Space:
    """One JSON space of the server. ``json`` is the space as the server sent it."""

    type: str = ""

    def __init__(self, json: Mapping[str, Any]) -> None:
        self.json: dict[str, Any] = dict(json)

    def decode(self, value: Any) -> Any:
        """One value from the wire (a JSON value) as its declared Python/NumPy type."""
        raise NotImplementedError

    def decode_batch(self, values: Any, n: int) -> Any:
        """N values from the wire (a list, or a packed array for Box) as one batch."""
        raise NotImplementedError

    def item(self, batch: Any, i: int) -> Any:
        """Element i of a batch made by ``decode_batch`` (the same value ``decode`` gives)."""
        return batch[i]

    def encode(self, value: Any) -> Any:
        """An action (Python or NumPy value) as the JSON value the server expects."""
        raise NotImplementedError

    def encode_batch(self, values: Any, n: int) -> list[Any]:
        """N actions (a batch as ``decode_batch`` lays it out, or a list of N) as N JSON values."""
        if isinstance(values, (list, tuple)) and len(values) == n:
            return [self.encode(v) for v in values]
        got = f"{len(values)}" if isinstance(values, (list, tuple)) else f"a {type(values).__name__}"
        raise InvalidAction(f"expected {n} actions (one per sub-env), got {got}")

    def __repr__(self) -> str:
        return f"colloquy.spaces.{type(self).__name__}({self.json})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and other.json == self.json

    def __hash__(self) -> int:
        return hash(repr(self))


def _bound(v: Any, size: int, what: str) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise BadConfig(f"Box {what} is not numbers: {e}") from None
    if a.ndim == 0:
        a = np.full(size, float(a))
    if a.shape != (size,):
        raise BadConfig(f"Box {what} has {a.size} values, the shape needs {size}")
    a = a.copy()
    a[a >= JSON_INF] = math.inf
    a[a <= -JSON_INF] = -math.inf
    return a


class Box(Space):
    """A box of numbers; on the wire a flat row-major list of ``prod(shape)`` numbers."""

    type = "Box"

    def __init__(self, json: Mapping[str, Any]) -> None:
        super().__init__(json)
        shape = json.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise BadConfig(f"Box shape must be positive integers, got {shape!r}")
        dtype = json.get("dtype", "float32")
        if not isinstance(dtype, str) or dtype not in _BOX_DTYPES:
            raise BadConfig(f"Box dtype {dtype!r} is not one of {sorted(_BOX_DTYPES)}")
        self.shape: tuple[int, ...] = tuple(shape)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.dtype = np.dtype(_BOX_DTYPES[dtype])
        self.low = _bound(json.get("low"), self.size, "low").reshape(self.shape)
        self.high = _bound(json.get("high"), self.size, "high").reshape(self.shape)
        if not np.all(self.low <= self.high):
            raise BadConfig("Box low must be <= high")

    def _cast(self, a: np.ndarray, value: Any) -> np.ndarray:
        if self.dtype.kind == "i":
            if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)) or np.any(a < -(2**31)) or np.any(a > 2**31 - 1):
                raise _fail(f"Box {self.dtype} value is not integers", value)
        return a.astype(self.dtype)

    def decode(self, value: Any) -> np.ndarray:
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise _fail("Box value is not a list of numbers", value) from None
        if a.shape != (self.size,):
            raise _fail(f"Box value does not hold {self.size} numbers", value)
        return self._cast(a, value).reshape(self.shape)

    def decode_batch(self, values: Any, n: int) -> np.ndarray:
        if isinstance(values, Mapping):
            a = unpack_f64(values)
            if a.shape != (n, self.size):
                raise _fail(f"packed observations of shape {list(a.shape)} are not {n}x{self.size}", values.get("shape"))
        elif isinstance(values, np.ndarray):  # a binary frame's array (colloquy.frames): float32 or float64 rows
            if values.shape != (n, self.size) or values.dtype.kind not in "fi":
                raise _fail(f"binary observations of shape {list(values.shape)} are not {n}x{self.size}", list(values.shape))
            a = values.astype(np.float64)
        else:
            if not isinstance(values, list) or len(values) != n:
                raise _fail(f"expected {n} observations", values)
            try:
                a = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise _fail("Box observations are not lists of numbers", values) from None
            if a.shape != (n, self.size):
                raise _fail(f"Box observations do not hold {n}x{self.size} numbers", values)
        return self._cast(a, values).reshape((n, *self.shape))

    def encode(self, value: Any) -> list[Any]:
        try:
            a = np.asarray(value)
        except (TypeError, ValueError):
            raise InvalidAction(f"a Box action must be an array of {self.size} numbers") from None
        if a.size != self.size or a.dtype.kind not in "biuf":
            raise InvalidAction(f"a Box action must be an array of {self.size} numbers, got shape {list(a.shape)} of {a.dtype}")
        out: list[Any] = a.reshape(-1).tolist()
        return out

    def encode_batch(self, values: Any, n: int) -> list[Any]:
        try:
            a = np.asarray(values)
        except (TypeError, ValueError):
            return super().encode_batch(values, n)
        if a.dtype.kind not in "biuf" or a.size != n * self.size:
            raise InvalidAction(f"expected {n} Box actions of {self.size} numbers, got shape {list(a.shape)} of {a.dtype}")
        out: list[Any] = a.reshape(n, self.size).tolist()
        return out


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{what} is not an integer", value)
    # The server's integers are int64 (and JSON's safe range is narrower): anything wider is malformed.
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _fail(f"{what} is outside the 64-bit integer range", value)
    return value


class Discrete(Space):
    type = "Discrete"

    def __init__(self, json: Mapping[str, Any]) -> None:
        super().__init__(json)
        n, start = json.get("n"), json.get("start", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0 or isinstance(start, bool) or not isinstance(start, int):
            raise BadConfig(f"Discrete needs a positive integer n and an integer start, got {dict(json)}")
        self.n, self.start = n, start

    def decode(self, value: Any) -> np.int64:
        return np.int64(_int(value, "Discrete value"))

    def decode_batch(self, values: Any, n: int) -> np.ndarray:
        if not isinstance(values, list) or len(values) != n:
            raise _fail(f"expected {n} observations", values)
        return np.array([_int(v, "Discrete value") for v in values], dtype=np.int64)

    def encode(self, value: Any) -> int:
        try:
            if isinstance(value, np.ndarray) and value.shape == ():
                value = value.item()
            return operator.index(value)
        except TypeError:
            raise InvalidAction(f"a Discrete action must be an integer, got {type(value).__name__}") from None

    def encode_batch(self, values: Any, n: int) -> list[Any]:
        a = np.asarray(values)
        if a.shape != (n,) or a.dtype.kind not in "iu":
            return super().encode_batch(values, n)
        out: list[Any] = a.tolist()
        return out


class MultiDiscrete(Space):
    type = "MultiDiscrete"

    def __init__(self, json: Mapping[str, Any]) -> None:
        super().__init__(json)
        nvec = json.get("nvec")
        if not isinstance(nvec, list) or not nvec or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in nvec):
            raise BadConfig(f"MultiDiscrete nvec must be positive integers, got {nvec!r}")
        self.nvec = np.array(nvec, dtype=np.int64)

    def decode(self, value: Any) -> np.ndarray:
        if not isinstance(value, list) or len(value) != len(self.nvec):
            raise _fail(f"MultiDiscrete value is not {len(self.nvec)} integers", value)
        return np.array([_int(v, "MultiDiscrete value") for v in value], dtype=np.int64)

    def decode_batch(self, values: Any, n: int) -> np.ndarray:
        if not isinstance(values, list) or len(values) != n:
            raise _fail(f"expected {n} observations", values)
        out = np.empty((n, len(self.nvec)), dtype=np.int64)
        for i, v in enumerate(values):
            out[i] = self.decode(v)
        return out

    def encode(self, value: Any) -> list[int]:
        a = np.asarray(value)
        if a.shape != self.nvec.shape or a.dtype.kind not in "iu":
            raise InvalidAction(f"a MultiDiscrete action must be {len(self.nvec)} integers")
        out: list[Any] = a.tolist()
        return out

    def encode_batch(self, values: Any, n: int) -> list[Any]:
        a = np.asarray(values)
        if a.shape == (n, len(self.nvec)) and a.dtype.kind in "iu":
            out: list[Any] = a.tolist()
        return out
        return super().encode_batch(values, n)


class Text(Space):
    """A string of ``minLength``..``maxLength`` characters (code points), from ``charset`` when given."""

    type = "Text"

    def __init__(self, json: Mapping[str, Any]) -> None:
        super().__init__(json)
        lo, hi, charset = json.get("minLength", 0), json.get("maxLength"), json.get("charset")
        if not isinstance(lo, int) or not isinstance(hi, int) or isinstance(lo, bool) or isinstance(hi, bool) or not 0 <= lo <= hi:
            raise BadConfig(f"Text lengths must satisfy 0 <= minLength <= maxLength, got {dict(json)}")
        if charset is not None and not isinstance(charset, str):
            raise BadConfig("Text charset must be a string")
        self.min_length: int = lo
        self.max_length: int = hi
        self.charset: str | None = charset

    def decode(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _fail("Text value is not a string", value)
        return value

    def decode_batch(self, values: Any, n: int) -> tuple[str, ...]:
        if not isinstance(values, list) or len(values) != n:
            raise _fail(f"expected {n} observations", values)
        return tuple(self.decode(v) for v in values)

    def encode(self, value: Any) -> str:
        if isinstance(value, np.str_):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidAction(f"a Text action must be a string, got {type(value).__name__}")
        return value


class Dict(Space):
    type = "Dict"

    def __init__(self, json: Mapping[str, Any]) -> None:
        super().__init__(json)
        spaces = json.get("spaces")
        if not isinstance(spaces, Mapping):
            raise BadConfig("Dict needs spaces")
        # Sorted, as the server writes them and as gymnasium.spaces.Dict orders a plain dict.
        self.spaces: dict[str, Space] = {k: space_from_json(spaces[k]) for k in sorted(spaces)}

    def _check(self, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping) or len(value) != len(self.spaces) or any(k not in value for k in self.spaces):
            raise _fail(f"Dict value does not have the keys {list(self.spaces)}", value)
        return value

    def decode(self, value: Any) -> dict[str, Any]:
        v = self._check(value)
        return {k: s.decode(v[k]) for k, s in self.spaces.items()}

    def decode_batch(self, values: Any, n: int) -> dict[str, Any]:
        if not isinstance(values, list) or len(values) != n:
            raise _fail(f"expected {n} observations", values)
        rows = [self._check(v) for v in values]
        return {k: s.decode_batch([r[k] for r in rows], n) for k, s in self.spaces.items()}

    def item(self, batch: Any, i: int) -> dict[str, Any]:
        return {k: s.item(batch[k], i) for k, s in self.spaces.items()}

    def encode(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise InvalidAction(f"a Dict action must be a mapping of {list(self.spaces)}")
        missing = [k for k in self.spaces if k not in value]
        if missing or len(value) != len(self.spaces):
            raise InvalidAction(f"a Dict action needs exactly the keys {list(self.spaces)}")
        return {k: s.encode(value[k]) for k, s in self.spaces.items()}

    def encode_batch(self, values: Any, n: int) -> list[Any]:
        if isinstance(values, Mapping):
            cols = {k: s.encode_batch(values[k], n) for k, s in self.spaces.items() if k in values}
            if len(cols) != len(self.spaces) or len(values) != len(self.spaces):
                raise InvalidAction(f"a batch of Dict actions needs exactly the keys {list(self.spaces)}")
            return [{k: cols[k][i] for k in self.spaces} for i in range(n)]
        return super().encode_batch(values, n)


class Tuple(Space):
    type = "Tuple"

    def __init__(self, json: Mapping[str, Any]) -> None:
        super().__init__(json)
        spaces = json.get("spaces")
        if not isinstance(spaces, list):
            raise BadConfig("Tuple needs a list of spaces")
        self.spaces: tuple[Space, ...] = tuple(space_from_json(s) for s in spaces)

    def _check(self, value: Any) -> list[Any]:
        if not isinstance(value, list) or len(value) != len(self.spaces):
            raise _fail(f"Tuple value is not a list of {len(self.spaces)}", value)
        return value

    def decode(self, value: Any) -> tuple[Any, ...]:
        v = self._check(value)
        return tuple(s.decode(x) for s, x in zip(self.spaces, v))

    def decode_batch(self, values: Any, n: int) -> tuple[Any, ...]:
        if not isinstance(values, list) or len(values) != n:
            raise _fail(f"expected {n} observations", values)
        rows = [self._check(v) for v in values]
        return tuple(s.decode_batch([r[j] for r in rows], n) for j, s in enumerate(self.spaces))

    def item(self, batch: Any, i: int) -> tuple[Any, ...]:
        return tuple(s.item(b, i) for s, b in zip(self.spaces, batch))

    def encode(self, value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)) or len(value) != len(self.spaces):
            raise InvalidAction(f"a Tuple action must be a sequence of {len(self.spaces)}")
        return [s.encode(x) for s, x in zip(self.spaces, value)]

    def encode_batch(self, values: Any, n: int) -> list[Any]:
        # A tuple is a batch as gymnasium lays it out (one batch per space); a list is N actions.
        if isinstance(values, tuple):
            if len(values) != len(self.spaces):
                raise InvalidAction(f"a batch of Tuple actions is a tuple of {len(self.spaces)} batches (or a list of {n} actions)")
            cols = [s.encode_batch(b, n) for s, b in zip(self.spaces, values)]
            return [[c[i] for c in cols] for i in range(n)]
        return super().encode_batch(values, n)


_TYPES: dict[str, type[Space]] = {c.type: c for c in (Box, Discrete, MultiDiscrete, Text, Dict, Tuple)}


def space_from_json(json: Any) -> Space:
    """The space a server's JSON describes (``{"type": "Discrete", "n": 4, "start": 0}``)."""
    if not isinstance(json, Mapping):
        raise BadConfig(f"a space must be a JSON object, got {type(json).__name__}")
    t = json.get("type")
    cls = _TYPES.get(t) if isinstance(t, str) else None
    if cls is None:
        raise BadConfig(f"unknown space type {json.get('type')!r}")
    return cls(json)


def unpack_f64(packed: Mapping[str, Any]) -> np.ndarray:
    """A PackedArray (``{"dtype": "float64", "shape": [n, size], "data": base64}``) as an (n, size) array.

    The values are the server's float64 values bit for bit (little-endian IEEE 754).
    """
    shape, data = packed.get("shape"), packed.get("data")
    if packed.get("dtype") != "float64" or not isinstance(data, str) or not isinstance(shape, list) or len(shape) != 2 \
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise _fail("not a packed float64 array", dict(packed))
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _fail("packed array data is not base64", data) from None
    n, size = shape
    if len(raw) != n * size * 8:
        raise _fail(f"packed array of {len(raw)} bytes does not hold {n}x{size} float64", shape)
    return np.frombuffer(raw, dtype="<f8").reshape(n, size)
