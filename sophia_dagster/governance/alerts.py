"""Alerts to a webhook that both Slack (``text`` + ``blocks``) and n8n (structured fields) accept, with an
outbox so an alert that could not be sent is sent on a later tick: nothing lost, nothing sent twice.

Delivery: httpx with a timeout; 429 (honouring ``Retry-After``) and 5xx are retried with capped exponential
backoff; a connection failure or a retry budget spent leaves the alert queued for the next tick; other 4xx
answers mean the webhook refuses this payload, so the alert is dropped and the refusal logged.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

Outcome = Literal["delivered", "retry_later", "refused"]
MAX_PENDING = 1_000


@dataclass(frozen=True)
class Alert:
    """One thing to tell people: a check that started failing or was resolved, or a failed run."""

    alert_id: str
    kind: Literal["check_failed", "check_resolved", "run_failed"]
    title: str
    summary: str
    url: str
    severity: str
    fields: dict[str, Any] = field(default_factory=dict)
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def status(self) -> str:
        """``resolved`` or ``firing``."""
        return "resolved" if self.kind == "check_resolved" else "firing"

    def payload(self) -> dict[str, Any]:
        """The JSON body: Slack's ``text`` and ``blocks``, plus flat fields an n8n workflow can route on."""
        icon = ":white_check_mark:" if self.status == "resolved" else ":rotating_light:"
        return {
            "text": f"{icon} {self.title}: {self.summary} <{self.url}|open in Dagster>",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": self.summary[:3000] or " "}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{self.url}|Open in Dagster>"}]},
            ],
            "alert_id": self.alert_id,
            "kind": self.kind,
            "status": self.status,
            "severity": self.severity,
            "title": self.title,
            "summary": self.summary,
            "url": self.url,
            "occurred_at": self.occurred_at,
            **self.fields,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """An alert kept in a sensor cursor."""
        return cls(**data)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, (parsed - datetime.now(UTC)).total_seconds()) if parsed else None


@dataclass
class WebhookSender:
    """Posts alert payloads to one webhook URL (never logged: it is a credential)."""

    url: str
    timeout_seconds: float = 5.0
    max_attempts: int = 4
    max_backoff_seconds: float = 8.0
    sleep: Callable[[float], None] = time.sleep

    def send(self, payload: dict[str, Any]) -> tuple[Outcome, str]:
        """Post once, retrying 429/5xx; returns the outcome and a reason fit for logs."""
        delay = 0.5
        reason = ""
        with httpx.Client(timeout=self.timeout_seconds) as client:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    response = client.post(self.url, json=payload)
                except httpx.HTTPError as exc:
                    return "retry_later", f"webhook unreachable ({type(exc).__name__})"
                if response.status_code < 300:
                    return "delivered", f"HTTP {response.status_code}"
                reason = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    return "refused", reason
                wait = _retry_after(response) if response.status_code == 429 else None
                wait = min(delay, self.max_backoff_seconds) if wait is None else wait
                if attempt == self.max_attempts or wait > self.max_backoff_seconds:
                    break
                self.sleep(wait)
                delay = min(delay * 2, self.max_backoff_seconds)
        return "retry_later", f"{reason} after {attempt} attempts"


@dataclass
class Outbox:
    """Alerts waiting to be delivered, oldest first; kept in the sensor cursor between ticks."""

    pending: list[Alert] = field(default_factory=list)

    def add(self, alerts: Iterable[Alert]) -> None:
        """Queue ``alerts`` (the oldest are dropped beyond MAX_PENDING)."""
        self.pending.extend(alerts)
        del self.pending[:-MAX_PENDING]

    def flush(self, sender: WebhookSender | None, log: Callable[[str], None]) -> int:
        """Send queued alerts in order until one cannot be sent now; returns how many were delivered."""
        delivered = 0
        while self.pending and sender is not None:
            alert = self.pending[0]
            outcome, reason = sender.send(alert.payload())
            if outcome == "retry_later":
                log(f"alert {alert.alert_id} kept for a later tick: {reason}")
                break
            self.pending.pop(0)
            if outcome == "refused":
                log(f"alert {alert.alert_id} refused by the webhook ({reason}); dropped")
            else:
                delivered += 1
        return delivered

    def to_list(self) -> list[dict[str, Any]]:
        """The queue as JSON-ready dicts."""
        return [asdict(a) for a in self.pending]
