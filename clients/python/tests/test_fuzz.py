"""Hypothesis fuzz of the client's decoding: random server spaces and values decode to exactly the
declared types and back; packed float64 is bit-exact; anything malformed raises ProtocolError (or
the typed error of its code), never anything else; stray frames never break the client."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
from typing import Any

import numpy as np
from hypothesis import given, settings, strategies as st

from colloquy import errors
from colloquy.aio import AsyncClient
from colloquy.errors import ColloquyError, ProtocolError, error_from_body
from colloquy.spaces import Box, Dict, Discrete, MultiDiscrete, Space, Text, Tuple, space_from_json, unpack_f64

SETTINGS = settings(max_examples=300, deadline=None)

f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
f64 = st.floats(allow_nan=False, allow_infinity=False)
i32 = st.integers(-(2**31), 2**31 - 1)


@st.composite
def box_and_value(draw: Any) -> tuple[dict[str, Any], list[float]]:
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    size = int(np.prod(shape))
    dtype = draw(st.sampled_from(["float32", "float64", "int32"]))
    elem = {"float32": f32, "float64": f64, "int32": i32}[dtype]
    value = draw(st.lists(elem, min_size=size, max_size=size))
    return {"type": "Box", "low": -1e308, "high": 1e308, "shape": shape, "dtype": dtype}, value


@st.composite
def space_and_value(draw: Any, depth: int = 0) -> tuple[dict[str, Any], Any]:
    kinds = ["box", "discrete", "multi", "text"] + (["dict", "tuple"] if depth < 2 else [])
    k = draw(st.sampled_from(kinds))
    if k == "box":
        return draw(box_and_value())
    if k == "discrete":
        n, start = draw(st.integers(1, 1000)), draw(st.integers(-50, 50))
        return {"type": "Discrete", "n": n, "start": start}, draw(st.integers(start, start + n - 1))
    if k == "multi":
        nvec = draw(st.lists(st.integers(1, 9), min_size=1, max_size=5))
        return {"type": "MultiDiscrete", "nvec": nvec}, [draw(st.integers(0, n - 1)) for n in nvec]
    if k == "text":
        s = draw(st.text(max_size=40))
        return {"type": "Text", "minLength": 0, "maxLength": 40}, s
    if k == "dict":
        keys = draw(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4, unique=True))
        parts = {key: draw(space_and_value(depth + 1)) for key in keys}
        return {"type": "Dict", "spaces": {key: p[0] for key, p in parts.items()}}, {key: p[1] for key, p in parts.items()}
    parts = draw(st.lists(space_and_value(depth + 1), min_size=1, max_size=3))
    return {"type": "Tuple", "spaces": [p[0] for p in parts]}, [p[1] for p in parts]


def as_json(v: Any) -> Any:
    """A decoded value back as the JSON the server would send (Box flat, floats as float64)."""
    if isinstance(v, np.ndarray):
        return v.reshape(-1).tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: as_json(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [as_json(x) for x in v]
    return v


def check_types(space: Space, v: Any) -> None:
    if isinstance(space, Box):
        assert isinstance(v, np.ndarray) and v.dtype == space.dtype and v.shape == space.shape
    elif isinstance(space, Discrete):
        assert type(v) is np.int64
    elif isinstance(space, MultiDiscrete):
        assert v.dtype == np.int64 and v.shape == space.nvec.shape
    elif isinstance(space, Text):
        assert type(v) is str
    elif isinstance(space, Dict):
        assert list(v) == list(space.spaces)
        for k, s in space.spaces.items():
            check_types(s, v[k])
    elif isinstance(space, Tuple):
        assert isinstance(v, tuple)
        for s, x in zip(space.spaces, v):
            check_types(s, x)


@SETTINGS
@given(space_and_value(), st.integers(1, 4))
def test_decode_is_exact_and_typed(sv: tuple[dict[str, Any], Any], n: int) -> None:
    sj, value = sv
    space = space_from_json(json.loads(json.dumps(sj)))
    wire = json.loads(json.dumps(value))  # what arrives: JSON text, parsed
    v = space.decode(wire)
    check_types(space, v)
    assert json.dumps(as_json(v), sort_keys=True) == json.dumps(wire, sort_keys=True)
    batch = space.decode_batch([wire] * n, n)
    for i in range(n):
        item = space.item(batch, i)
        check_types(space, item)
        assert json.dumps(as_json(item), sort_keys=True) == json.dumps(wire, sort_keys=True)
    # An action of the space encodes to the value it came from.
    assert json.dumps(space.encode(v), sort_keys=True) == json.dumps(wire, sort_keys=True)
    assert json.dumps(space.encode_batch(batch, n), sort_keys=True) == json.dumps([wire] * n, sort_keys=True)


@SETTINGS
@given(st.integers(0, 5), st.integers(1, 6), st.data())
def test_packed_f64_is_bit_exact(n: int, size: int, data: Any) -> None:
    bits = data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=n * size, max_size=n * size))
    raw = b"".join(struct.pack("<Q", b) for b in bits)
    packed = {"dtype": "float64", "shape": [n, size], "data": base64.b64encode(raw).decode()}
    a = unpack_f64(packed)
    assert a.shape == (n, size) and a.tobytes() == raw
    if n:
        finite = np.where(np.isfinite(a), a, 0.0)
        space = space_from_json({"type": "Box", "low": -1e308, "high": 1e308, "shape": [size], "dtype": "float64"})
        p2 = {**packed, "data": base64.b64encode(finite.astype("<f8").tobytes()).decode()}
        assert space.decode_batch(p2, n).tobytes() == finite.tobytes()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=30,
)


@SETTINGS
@given(space_and_value(), json_values, st.integers(1, 3))
def test_malformed_values_raise_protocol_error(sv: tuple[dict[str, Any], Any], junk: Any, n: int) -> None:
    space = space_from_json(sv[0])
    for call in (lambda: space.decode(junk), lambda: space.decode_batch(junk, n), lambda: space.decode_batch([junk] * n, n)):
        try:
            call()
        except ProtocolError:
            pass


@SETTINGS
@given(json_values)
def test_error_bodies_become_coded_errors(body: Any) -> None:
    err = error_from_body(body)
    assert isinstance(err, ColloquyError) and isinstance(err.code, str)
    if isinstance(body, dict) and isinstance(body.get("code"), str) and isinstance(body.get("message"), str):
        assert err.code == body["code"] and err.message == body["message"]
        if body["code"] in errors.ERROR_CODES:
            assert type(err) is not ColloquyError


@st.composite
def mutated_space(draw: Any) -> Any:
    """A valid space JSON with one field (at any depth) replaced by junk."""
    sj = json.loads(json.dumps(draw(space_and_value())[0]))
    node = sj
    while True:
        keys = list(node)
        k = draw(st.sampled_from(keys))
        child = node[k]
        if isinstance(child, dict) and child and draw(st.booleans()):
            node = child
            continue
        node[k] = draw(json_values)
        return sj


@SETTINGS
@given(st.one_of(json_values, mutated_space()))
def test_spaces_from_junk_raise_bad_config(junk: Any) -> None:
    try:
        space_from_json(junk)
    except errors.BadConfig:
        pass


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values.map(json.dumps), st.text(max_size=50), st.binary(max_size=50)))
def test_stray_frames_never_break_the_client(frame: Any) -> None:
    async def main() -> None:
        c = AsyncClient("ws://unused")
        fut = c._send("ping", {}, asyncio.get_running_loop().create_future(), resend=True)
        c._on_message(frame)
        # A frame that is not the reply to request 1 leaves it pending; the real reply resolves it.
        if not fut.done():
            c._on_message(json.dumps({"id": 1, "ok": True, "result": {"pong": True}}))
        assert fut.done()
        if fut.exception() is None:
            assert fut.result() is not None or True
        else:
            assert isinstance(fut.exception(), ColloquyError)

    asyncio.run(main())


def test_infinite_bounds_come_back_infinite() -> None:
    b = space_from_json({"type": "Box", "low": -1e308, "high": [1e308, 2.0], "shape": [2], "dtype": "float32"})
    assert b.low.tolist() == [-math.inf, -math.inf] and b.high.tolist() == [math.inf, 2.0]
