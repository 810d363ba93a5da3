"""Every error the Estuary integration raises, under one base; none of them ever carries a token or a secret.

A runtime outside this package (such as an embedded data plane) derives its errors from :class:`EstuaryError`
too, so ``except EstuaryError`` catches whatever any Estuary runtime raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sophia_dagster.estuary.models import DraftError

PathPart = str | int


class EstuaryError(Exception):
    """Base class of every error of the Estuary integration and of the runtimes that implement it."""


class EstuaryAPIError(EstuaryError):
    """An HTTP call failed: names the endpoint (method and path, no query), the status and Estuary's message."""

    def __init__(self, method: str, path: str, status: int | None, message: str, code: str | None = None) -> None:
        self.method, self.path, self.status, self.code, self.estuary_message = method, path, status, code, message
        where = f"{method} {path}"
        what = f"HTTP {status}" if status is not None else "no answer"
        detail = f"{code}: {message}" if code else message
        super().__init__(f"Estuary {where} failed ({what}): {detail}")


class CatalogIssue(NamedTuple):
    """One problem found in a catalog file."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '<root>'}: {self.reason}"


def format_path(parts: Iterable[PathPart]) -> str:
    """Render ``('captures', 'acme/pg', 'bindings', 2, 'target')`` as ``captures.acme/pg.bindings[2].target``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class CatalogError(EstuaryError):
    """A catalog file is unreadable or invalid; ``issues`` says where and why."""

    def __init__(self, issues: Sequence[CatalogIssue]) -> None:
        self.issues = list(issues)
        super().__init__("invalid Estuary catalog:\n" + "\n".join(f"  {i}" for i in self.issues))


class PublicationFailedError(EstuaryError):
    """A publication ended in a failed ``job_status``; ``errors`` are the draft errors Estuary reported."""

    def __init__(self, pub_id: str, status: str, names: Sequence[str], errors: Sequence[DraftError]) -> None:
        self.pub_id, self.status, self.names, self.errors = pub_id, status, list(names), list(errors)
        super().__init__(self._headline() + "".join(f"\n  {e.scope}: {e.detail}" for e in self.errors))

    def _headline(self) -> str:
        return f"Estuary publication {self.pub_id} of {', '.join(self.names)} ended {self.status}"


class ConcurrentChangeError(PublicationFailedError):
    """Someone else published one of the specs since we read it; nothing was overwritten."""

    def _headline(self) -> str:
        return (
            f"concurrent change: {', '.join(self.names)} changed in Estuary since it was read "
            f"(publication {self.pub_id} ended {self.status}); nothing was overwritten, re-read and publish again"
        )


class TaskNotReadyError(EstuaryError):
    """A task did not reach a healthy, caught-up state in time."""
