"""Estuary credentials: a refresh token exchanged for short-lived access JWTs, or a ready JWT."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from sophia_dagster.estuary.errors import EstuaryError
from sophia_dagster.estuary.http import Redactor

REFRESH_MARGIN_SECONDS = 60.0


class RefreshToken(NamedTuple):
    """The decoded form of a refresh token: base64 of ``{"id": …, "secret": …}``."""

    id: str
    secret: str


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))


def parse_refresh_token(token: str) -> RefreshToken:
    """Decode a refresh token; the error never repeats the token."""
    try:
        body = json.loads(_b64decode(token.strip()))
        return RefreshToken(str(body["id"]), str(body["secret"]))
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise EstuaryError(
            "the Estuary API token is neither a refresh token (base64 of {id, secret}) nor an access JWT"
        ) from None


def jwt_expiry(jwt: str) -> float:
    """The ``exp`` claim of a JWT (not verified: Estuary does that); infinite when absent or unreadable."""
    try:
        return float(json.loads(_b64decode(jwt.split(".")[1]))["exp"])
    except (ValueError, IndexError, KeyError, binascii.Error, TypeError):
        return float("inf")


def is_jwt(token: str) -> bool:
    """A JWT has three dot-separated parts."""
    return token.count(".") == 2


class TokenSource:
    """Hands out a valid access JWT, exchanging the refresh token when under a minute remains.

    ``exchange`` posts ``{"refresh_token_id", "secret"}`` to ``rpc/generate_access_token`` and returns
    the JSON answer. Single-use refresh tokens are rotated: a ``refresh_token`` in the answer replaces
    the current one (in memory only, so it is never written anywhere). Threads sharing a source exchange
    one at a time, so a single-use token is never spent twice. ``current``, ``exchange_body`` and ``accept``
    are the same steps without I/O, for the async client to drive.
    """

    def __init__(self, api_token: str, exchange: Callable[[dict[str, str]], dict[str, Any]], redactor: Redactor):
        self._exchange = exchange
        self._redact = redactor
        self._jwt: str | None = None
        self._expires = 0.0
        self._refresh: RefreshToken | None = None
        self._lock = threading.Lock()
        redactor.add([api_token])
        if is_jwt(api_token.strip()):
            self._set_jwt(api_token.strip())
        else:
            self._refresh = parse_refresh_token(api_token)
            redactor.add([self._refresh.secret])

    def _set_jwt(self, jwt: str) -> None:
        self._jwt, self._expires = jwt, jwt_expiry(jwt)
        self._redact.add([jwt])

    def access_token(self) -> str:
        """A JWT valid for at least another minute."""
        with self._lock:
            if (jwt := self.current()) is not None:
                return jwt
            return self.accept(self._exchange(self.exchange_body()))

    def current(self) -> str | None:
        """The JWT when it is valid for at least another minute, else None (an exchange is due)."""
        if self._jwt and self._expires - time.time() > REFRESH_MARGIN_SECONDS:
            return self._jwt
        return None

    def exchange_body(self) -> dict[str, str]:
        """The body of the exchange that is due; an error when only an expired JWT was given."""
        if self._refresh is None:
            raise EstuaryError("the Estuary access JWT has expired and no refresh token was given; set a refresh token")
        return {"refresh_token_id": self._refresh.id, "secret": self._refresh.secret}

    def accept(self, answer: dict[str, Any]) -> str:
        """Take the exchange's answer: the new JWT, and the rotated refresh token when one came back."""
        self._set_jwt(str(answer["access_token"]))
        rotated = answer.get("refresh_token")
        if isinstance(rotated, dict) and rotated.get("secret"):
            self._refresh = RefreshToken(str(rotated["id"]), str(rotated["secret"]))
            self._redact.add([self._refresh.secret])
        return self._jwt
