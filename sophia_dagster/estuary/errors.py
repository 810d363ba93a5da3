"""Exceptions raised by the Estuary integration; none of them ever carries a token or a resolved secret."""

from __future__ import annotations

from collections.abc import Sequence

from sophia_dagster.estuary.models import DraftError


class EstuaryError(Exception):
    """Base class of every Estuary integration error."""


class EstuaryAPIError(EstuaryError):
    """An HTTP call failed: names the endpoint (method and path, no query), the status and Estuary's message."""

    def __init__(self, method: str, path: str, status: int | None, message: str, code: str | None = None) -> None:
        self.method, self.path, self.status, self.code, self.estuary_message = method, path, status, code, message
        where = f"{method} {path}"
        what = f"HTTP {status}" if status is not None else "no answer"
        detail = f"{code}: {message}" if code else message
        super().__init__(f"Estuary {where} failed ({what}): {detail}")


class PublicationFailed(EstuaryError):
    """A publication ended in a failed ``job_status``; ``errors`` are the draft errors Estuary reported."""

    def __init__(self, pub_id: str, status: str, names: Sequence[str], errors: Sequence[DraftError]) -> None:
        self.pub_id, self.status, self.names, self.errors = pub_id, status, list(names), list(errors)
        super().__init__(self._headline() + "".join(f"\n  {e.scope}: {e.detail}" for e in self.errors))

    def _headline(self) -> str:
        return f"Estuary publication {self.pub_id} of {', '.join(self.names)} ended {self.status}"


class ConcurrentChangeError(PublicationFailed):
    """Someone else published one of the specs since we read it; nothing was overwritten."""

    def _headline(self) -> str:
        return (
            f"concurrent change: {', '.join(self.names)} changed in Estuary since it was read "
            f"(publication {self.pub_id} ended {self.status}); nothing was overwritten, re-read and publish again"
        )


class TaskNotReady(EstuaryError):
    """A task did not reach a healthy, caught-up state in time."""
