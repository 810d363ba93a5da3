"""A fake Snowflake login endpoint: records each login request and refuses it the way Snowflake does.

Snowflake answers a refused login with HTTP 200 and ``{"success": false, "code": "390100", "message": ...}``;
the connector turns that into a `DatabaseError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import JsonHandler, serving

INCORRECT_CREDENTIALS = "Incorrect username or password was specified."


@dataclass
class FakeSnowflake:
    """What the fake received, and the message it refuses logins with."""

    port: int = 0
    message: str = INCORRECT_CREDENTIALS
    logins: list[dict[str, Any]] = field(default_factory=list)


def _handler(fake: FakeSnowflake) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = self.read_body()
            if self.path.startswith("/session/v1/login-request"):
                fake.logins.append(json.loads(body)["data"])
                reply = {
                    "data": {"nextAction": "RETRY_LOGIN", "signInOptions": {}},
                    "code": "390100",
                    "message": fake.message,
                    "success": False,
                    "headers": None,
                }
            else:
                reply = {"data": None, "code": "390112", "message": "Session no longer exists.", "success": False}
            self.reply_json(200, reply)

    return Handler


@contextmanager
def fake_snowflake(message: str = INCORRECT_CREDENTIALS) -> Iterator[FakeSnowflake]:
    """Serve the fake on a free loopback port for the duration of the block."""
    fake = FakeSnowflake(message=message)
    with serving(_handler(fake)) as port:
        fake.port = port
        yield fake
