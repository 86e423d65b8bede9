"""The server's models as Hugging Face folders: ``fetch_hf_model`` downloads ``GET /v1/models/NAME/hf``.

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from colloquy.hf import fetch_hf_model

    path = fetch_hf_model("ws://127.0.0.1:8787/v1/env")           # the env's base model, checked by SHA-256
    base = AutoModelForCausalLM.from_pretrained(path)              # GPT-2 architecture
    tokenizer = AutoTokenizer.from_pretrained(path)                # the same ids as the server's tokenizer

The export is a stock GPT-2 (``config.json``, ``model.safetensors``, ``tokenizer.json``,
``tokenizer_config.json``, ``generation_config.json``); its log-probabilities are the server's to
float32 rounding for contexts up to ``n_positions`` tokens (the server slides its window past that).
``turn_marker_ids`` reads the ids of the two turn markers from it. Standard library only: no torch
needed to download.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from urllib.parse import quote
from pathlib import Path
from typing import Any

from .errors import ColloquyError, NotFound, Unauthorized

__all__ = ["fetch_hf_model", "http_base", "turn_marker_ids", "HF_FILES"]

HF_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json")


def http_base(url: str) -> str:
    """The server's http(s) base URL from a ws(s)://…/v1/env or http(s) URL."""
    u = url.rstrip("/")
    if u.endswith("/v1/env"):
        u = u[: -len("/v1/env")]
    if u.startswith("ws://"):
        u = "http://" + u[5:]
    elif u.startswith("wss://"):
        u = "https://" + u[6:]
    return u


def _get(url: str, token: str | None, timeout: float) -> bytes:
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data: bytes = r.read()
            return data
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        try:
            err = json.loads(body).get("error", {})
            message = f"{url}: HTTP {e.code}: {err.get('code', '')} {err.get('message', '')}".strip()
        except ValueError:
            message = f"{url}: HTTP {e.code}"
        if e.code == 401:
            raise Unauthorized(message) from None
        if e.code == 404:
            raise NotFound(message) from None
        raise ColloquyError(message) from None


def fetch_hf_model(url: str, dest: str | os.PathLike[str] | None = None, *, name: str = "base",
                   token: str | None = None, timeout: float = 120.0) -> Path:
    """Download the Hugging Face export of the server's model ``name`` into ``dest`` (default: a
    folder under the system's temporary directory named by the export's hash) and return its path.

    Every file's SHA-256 is checked; files already there with the right hash are kept. Raises
    ``NotFound`` (no such model), ``Unauthorized`` (the server wants a token) or ``ColloquyError``.
    """
    base = http_base(url)
    listing: dict[str, Any] = json.loads(_get(f"{base}/v1/models/{quote(name)}/hf", token, timeout))
    files: list[dict[str, Any]] = listing["files"]
    digest = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()[:16]
    out = Path(dest) if dest is not None else Path(tempfile.gettempdir()) / f"colloquy-hf-{name}-{digest}"
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = out / str(f["name"])
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == f["sha256"]:
            continue
        data = _get(f"{base}/v1/models/{quote(name)}/hf/{quote(str(f['name']))}", token, timeout)
        if len(data) != f["bytes"] or hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise ColloquyError(f"{f['name']} of model '{name}' failed its SHA-256 check")
        part = target.with_name(target.name + ".part")
        part.write_bytes(data)
        part.replace(target)
    return out


def turn_marker_ids(path: str | os.PathLike[str]) -> dict[str, int]:
    """Ids of the export's added tokens: ``end_of_text``, ``pad``, ``student`` (``\\n\\nStudent:``,
    which ends a teacher turn) and ``teacher`` (``\\n\\nTeacher:``, which ends a student turn)."""
    tok = json.loads((Path(path) / "tokenizer.json").read_text())
    by: dict[str, int] = {t["content"]: int(t["id"]) for t in tok["added_tokens"]}
    return {"end_of_text": by["<|endoftext|>"], "pad": by["<|pad|>"], "student": by["\n\nStudent:"],
            "teacher": by["\n\nTeacher:"]}
