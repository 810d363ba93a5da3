"""A local stand-in for Pulumi Cloud's ESC API: open an environment, then read the opened session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import JsonHandler, serving


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


def _handler(state: FakeEsc) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def _route(self) -> tuple[str, list[str]] | None:
            state.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"token {state.token}":
                self.reply_json(401, {"code": 401, "message": "Unauthorized: No credentials provided or are invalid."})
                return None
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:3] != ["api", "esc", "environments"] or len(parts) < 7 or parts[6] != "open":
                self.reply_json(404, {"code": 404, "message": "Not Found"})
                return None
            name = "/".join(parts[3:6])
            if name not in state.environments:
                self.reply_json(404, {"code": 404, "message": f"Environment '{name}' not found"})
                return None
            return name, parts[7:]

        def do_POST(self) -> None:
            routed = self._route()
            if routed:
                session = str(uuid.uuid4())
                state.sessions[session] = routed[0]
                self.reply_json(200, {"id": session, "diagnostics": []})

        def do_GET(self) -> None:
            routed = self._route()
            if not routed:
                return
            name, rest = routed
            if not rest or state.sessions.get(rest[0]) != name:
                self.reply_json(404, {"code": 404, "message": "open session not found"})
                return
            values = state.environments[name]
            self.reply_json(200, {"properties": {key: esc_value(item) for key, item in values.items()}})

    return Handler


@contextmanager
def running_fake_esc(token: str) -> Iterator[FakeEsc]:
    """Serve a FakeEsc on a free loopback port for the duration of the block."""
    state = FakeEsc(token=token)
    with serving(_handler(state)) as port:
        state.url = f"http://127.0.0.1:{port}"
        yield state
