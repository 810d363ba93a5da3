"""The MCP server's audit log: one JSON line per write and per refusal (who, what, when, result)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["ok", "error", "refused", "declined"]


class AuditLog:
    """Appends audit records to a JSON-lines file (created 0600); every text goes through ``redact`` first."""

    def __init__(self, path: Path, redact: Callable[[str], str]) -> None:
        self.path, self._redact, self._lock = path, redact, threading.Lock()

    def record(self, *, who: str, tool: str, arguments: Mapping[str, Any], outcome: Outcome, detail: str) -> None:
        """Append one record; ``arguments`` and ``detail`` are redacted before they are written."""
        line = json.dumps(
            {
                "at": datetime.now(UTC).isoformat(),
                "who": who,
                "tool": tool,
                "arguments": json.loads(self._redact(json.dumps(dict(arguments), default=str))),
                "outcome": outcome,
                "detail": self._redact(detail),
            },
            sort_keys=True,
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.write(line + "\n")

    def records(self) -> list[dict[str, Any]]:
        """Every record written so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
