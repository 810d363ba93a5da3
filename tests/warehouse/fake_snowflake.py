"""A fake Snowflake login endpoint: records each login request and refuses it the way Snowflake does.

Snowflake answers a refused login with HTTP 200 and ``{"success": false, "code": "390100", "message": ...}``;
the connector turns that into a `DatabaseError`.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INCORRECT_CREDENTIALS = "Incorrect username or password was specified."


@dataclass
class FakeSnowflake:
    """What the fake received, and the message it refuses logins with."""

    port: int = 0
    message: str = INCORRECT_CREDENTIALS
    logins: list[dict[str, Any]] = field(default_factory=list)


def _handler(fake: FakeSnowflake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path.startswith("/session/v1/login-request"):
                fake.logins.append(json.loads(body)["data"])
                reply = {"data": {"nextAction": "RETRY_LOGIN", "signInOptions": {}}, "code": "390100",
                         "message": fake.message, "success": False, "headers": None}
            else:
                reply = {"data": None, "code": "390112", "message": "Session no longer exists.", "success": False}
            payload = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def fake_snowflake(message: str = INCORRECT_CREDENTIALS) -> Iterator[FakeSnowflake]:
    """Serve the fake on a free loopback port for the duration of the block."""
    fake = FakeSnowflake(message=message)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
