"""Coded errors of protocol v1 as typed exceptions (the server's ``core/errors.ts`` codes).

Every error reply ``{"code": ..., "message": ..., "details": ...}`` becomes an instance of the class
registered for its code, so callers catch what they mean (``except ResetNeeded``) instead of
comparing strings. An unknown code (a newer server) becomes a plain :class:`ColloquyError`.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = [
    "ColloquyError", "BadJson", "BadRequest", "UnknownOp", "UnknownEnv", "UnknownSession",
    "ResetNeeded", "InvalidAction", "Capacity", "Unauthorized", "PayloadTooLarge",
    "RequestTimeout", "Internal", "BadConfig", "NotFound", "Closed", "ProtocolError",
    "ERROR_CODES", "error_from_body",
]


class ColloquyError(Exception):
    """An error with one of the server's codes (``code``), its message and optional details."""

    code: str = "INTERNAL"

    def __init__(self, message: str, details: Mapping[str, Any] | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details) if details else {}
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BadJson(ColloquyError):
    code = "BAD_JSON"


class BadRequest(ColloquyError):
    code = "BAD_REQUEST"


class UnknownOp(ColloquyError):
    code = "UNKNOWN_OP"


class UnknownEnv(ColloquyError):
    """No env with this id on the server; ``suggestion`` names the nearest registered id, if any."""

    code = "UNKNOWN_ENV"

    @property
    def suggestion(self) -> str | None:
        s = self.details.get("suggestion")
        return s if isinstance(s, str) else None


class UnknownSession(ColloquyError):
    code = "UNKNOWN_SESSION"


class ResetNeeded(ColloquyError):
    """``step`` before ``reset``, after an episode ended (no autoreset), or after a timed-out request."""

    code = "RESET_NEEDED"


class InvalidAction(ColloquyError, ValueError):
    code = "INVALID_ACTION"


class Capacity(ColloquyError):
    """A server limit was reached (sessions, envs per session, pending requests, connections)."""

    code = "CAPACITY"


class Unauthorized(ColloquyError, PermissionError):
    code = "UNAUTHORIZED"


class PayloadTooLarge(ColloquyError):
    code = "PAYLOAD_TOO_LARGE"


class RequestTimeout(ColloquyError, TimeoutError):
    """No reply in time (the server's TIMEOUT, or the client's own request timeout)."""

    code = "TIMEOUT"


class Internal(ColloquyError):
    code = "INTERNAL"


class BadConfig(ColloquyError, ValueError):
    """Bad kwargs or options (the server validates them against the env's schema)."""

    code = "BAD_CONFIG"


class NotFound(ColloquyError):
    code = "NOT_FOUND"


class Closed(ColloquyError):
    """The env, the client or the connection is closed (or the server is shutting down)."""

    code = "CLOSED"


class ProtocolError(ColloquyError):
    """The server sent something this client cannot read (not protocol v1)."""

    code = "PROTOCOL"


_BY_CODE: dict[str, type[ColloquyError]] = {
    cls.code: cls
    for cls in (BadJson, BadRequest, UnknownOp, UnknownEnv, UnknownSession, ResetNeeded, InvalidAction,
                Capacity, Unauthorized, PayloadTooLarge, RequestTimeout, Internal, BadConfig, NotFound, Closed)
}
ERROR_CODES: tuple[str, ...] = tuple(_BY_CODE)


def error_from_body(body: Any) -> ColloquyError:
    """The typed exception of an error body from the wire (anything malformed is a ProtocolError)."""
    if not isinstance(body, Mapping):
        return ProtocolError(f"error reply without an error object: {str(body)[:200]}")
    code, message, details = body.get("code"), body.get("message"), body.get("details")
    if not isinstance(code, str) or not isinstance(message, str):
        return ProtocolError(f"error reply without code and message: {str(body)[:200]}")
    details = details if isinstance(details, Mapping) else None
    cls = _BY_CODE.get(code)
    return cls(message, details) if cls is not None else ColloquyError(message, details, code=code)
