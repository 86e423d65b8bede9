"""Binary frames of protocol v1 (``obs_encoding="binary"``; the TypeScript twin is ``protocol/binary.ts``).

A binary WebSocket frame: a u32 little-endian header length H, H bytes of UTF-8 JSON header (a
request or a reply as in a text frame, plus ``"arrays": [[name, dtype, shape], ...]``), then each
array in order, starting at the next multiple of 8 bytes (zero padding), little-endian, the frame
ending with the last array's last byte. dtypes: float64, float32, int32, bool (one byte, 0 or 1).
The values are exactly those a JSON frame would carry (finite numbers; -0 travels as 0).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from .errors import ProtocolError

__all__ = ["decode_frame", "reply_from_frame", "step_frame"]

_DTYPES: dict[str, np.dtype[Any]] = {"float64": np.dtype("<f8"), "float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("u1")}
_NAMES = {"f8": "float64", "f4": "float32", "i4": "int32", "b1": "bool"}
_MAX_ARRAYS = 8
_RESULT_ORDER = ("observations", "rewards", "terminated", "truncated", "infos")


def _align8(n: int) -> int:
    return (n + 7) & ~7


def encode_frame(header: dict[str, Any], arrays: list[tuple[str, np.ndarray]]) -> bytes:
    """A binary frame of ``header`` (without "arrays": this adds them) and ``arrays`` (float64,
    float32, int32 or bool ndarrays; written little-endian)."""
    names = [_NAMES[f"{a.dtype.kind}{a.dtype.itemsize}"] for _, a in arrays]
    entries = [[name, dtype, list(a.shape)] for (name, a), dtype in zip(arrays, names)]
    head = json.dumps({**header, "arrays": entries}, separators=(",", ":"), allow_nan=False).encode()
    parts = [struct.pack("<I", len(head)), head]
    size = 4 + len(head)
    for (_, a), dtype in zip(arrays, names):
        pad = _align8(size) - size
        data = a.astype(_DTYPES[dtype]).tobytes()
        parts += [b"\0" * pad, data]
        size += pad + len(data)
    return b"".join(parts)


def step_frame(rid: int, session: str, actions: list[Any], ints: bool = False) -> bytes | None:
    """A step request as a binary frame, or None when the actions (JSON values, as ``encode_batch``
    gives them) are not numbers or equal rows of numbers (the request then goes as JSON). Integer
    actions pack (int32) only with ``ints``: for a few small integers JSON is smaller and cheaper."""
    try:
        a = np.asarray(actions)
    except (TypeError, ValueError):
        return None
    if a.ndim not in (1, 2) or a.dtype.kind not in "iuf" or a.size == 0:
        return None
    if a.dtype.kind in "iu":
        if np.any(a < -(2**31)) or np.any(a > 2**31 - 1):
            a = a.astype(np.float64)
            if not np.all(np.isfinite(a)) or np.any(np.abs(a) > 2**53):
                return None  # beyond float64's exact integers: JSON keeps them exact
        elif not ints:
            return None
        else:
            a = a.astype("<i4")
    if a.dtype.kind == "f":
        a = a.astype("<f8") + 0.0  # + 0.0: -0 as JSON writes it
        if not np.all(np.isfinite(a)):
            return None
    return encode_frame({"id": rid, "op": "step", "session": session}, [("actions", a)])


def decode_frame(data: bytes) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]]]:
    """A binary frame's header and arrays, checked (dtype, shape, exact length, zero padding,
    booleans 0 or 1); ProtocolError when it is malformed."""
    if len(data) < 4:
        raise ProtocolError("binary frame shorter than its header length")
    (h,) = struct.unpack_from("<I", data, 0)
    if h > len(data) - 4:
        raise ProtocolError("binary frame: header length beyond the frame")
    try:
        header = json.loads(bytes(data[4 : 4 + h]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("binary frame: the header is not UTF-8 JSON") from None
    if not isinstance(header, dict):
        raise ProtocolError("binary frame: the header is not an object")
    entries = header.pop("arrays", None)
    if not isinstance(entries, list) or len(entries) > _MAX_ARRAYS:
        raise ProtocolError("binary frame: 'arrays' is not a list of [name, dtype, shape]")
    arrays: list[tuple[str, np.ndarray]] = []
    off = 4 + h
    for e in entries:
        if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and e[1] in _DTYPES and isinstance(e[2], list)
                and len(e[2]) in (1, 2) and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in e[2])):
            raise ProtocolError(f"binary frame: bad array entry {str(e)[:80]}")
        name, dtype, shape = e
        start = _align8(off)
        if start > len(data) or any(data[off:start]):
            raise ProtocolError(f"binary frame: bad padding before array '{name}'")
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * _DTYPES[dtype].itemsize
        if nbytes > len(data) - start:
            raise ProtocolError(f"binary frame: array '{name}' needs {nbytes} bytes, the frame has {len(data) - start}")
        a = np.frombuffer(data, dtype=_DTYPES[dtype], count=count, offset=start).reshape(shape)
        if dtype == "bool":
            if np.any(a > 1):
                raise ProtocolError(f"binary frame: array '{name}' holds a bool byte other than 0 or 1")
            a = a.astype(np.bool_)
        elif not np.all(np.isfinite(a)):
            raise ProtocolError(f"binary frame: array '{name}' holds a non-finite number")
        arrays.append((name, a))
        off = start + nbytes
    if off != len(data):
        raise ProtocolError("binary frame: bytes after the last array")
    return header, arrays


def reply_from_frame(data: bytes) -> dict[str, Any]:
    """A binary reply as the reply it stands for: ``{id, ok, result}``, the arrays as ndarrays in the result."""
    header, arrays = decode_frame(data)
    result = header.get("result")
    if not isinstance(result, dict):
        raise ProtocolError("binary reply without a result object")
    fields: dict[str, Any] = dict(result)
    for name, a in arrays:
        fields[name] = a
    empty = header.get("emptyInfos")
    if empty is not None:
        if not isinstance(empty, int) or isinstance(empty, bool) or empty < 0 or "infos" in fields:
            raise ProtocolError("binary reply: 'emptyInfos' must be a count, with no 'infos' in the result")
        fields["infos"] = [{} for _ in range(empty)]
    ordered = {k: fields.pop(k) for k in _RESULT_ORDER if k in fields}
    ordered.update(fields)
    return {"id": header.get("id"), "ok": header.get("ok"), "result": ordered}
