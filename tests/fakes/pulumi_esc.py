"""A local stand-in for Pulumi Cloud's ESC API: open an environment, then read the opened session."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def esc_value(plain: Any, secret: bool = False) -> dict[str, Any]:
    """A plain JSON value in ESC's `Value` shape (`value`, `secret`, `trace`)."""
    if isinstance(plain, dict):
        inner: Any = {key: esc_value(item, secret) for key, item in plain.items()}
    elif isinstance(plain, list):
        inner = [esc_value(item, secret) for item in plain]
    else:
        inner = plain
    return {"value": inner, "secret": secret, "trace": {"def": {"environment": "fake"}}}


@dataclass
class FakeEsc:
    """State of the fake: environments by `org/project/env`, the token it accepts, and what it saw."""

    token: str
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""


def _handler(state: FakeEsc) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> tuple[str, list[str]] | None:
            state.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"token {state.token}":
                self._reply(401, {"code": 401, "message": "Unauthorized: No credentials provided or are invalid."})
                return None
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:3] != ["api", "esc", "environments"] or len(parts) < 7 or parts[6] != "open":
                self._reply(404, {"code": 404, "message": "Not Found"})
                return None
            name = "/".join(parts[3:6])
            if name not in state.environments:
                self._reply(404, {"code": 404, "message": f"Environment '{name}' not found"})
                return None
            return name, parts[7:]

        def do_POST(self) -> None:
            routed = self._route()
            if routed:
                session = str(uuid.uuid4())
                state.sessions[session] = routed[0]
                self._reply(200, {"id": session, "diagnostics": []})

        def do_GET(self) -> None:
            routed = self._route()
            if not routed:
                return
            name, rest = routed
            if not rest or state.sessions.get(rest[0]) != name:
                self._reply(404, {"code": 404, "message": "open session not found"})
                return
            values = state.environments[name]
            self._reply(200, {"properties": {key: esc_value(item) for key, item in values.items()}})

    return Handler


@contextmanager
def running_fake_esc(token: str) -> Iterator[FakeEsc]:
    """Serve a FakeEsc on a free loopback port for the duration of the block."""
    state = FakeEsc(token=token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
