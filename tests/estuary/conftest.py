"""Fixtures for the Estuary tests: a running fake control plane and a workspace with fast retry settings."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from sophia_dagster.config import PLATFORM_CATALOG_DIR
from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.fakes.estuary_server import FakeEstuary

CANARY = f"canary-{secrets.token_hex(12)}"
"""Generated per run, so finding it anywhere on disk means something wrote it there."""
PLATFORM_ENV = {
    "POSTGRES_CAPTURE_ADDRESS": "db.sophia.internal:5432",
    "POSTGRES_CAPTURE_PASSWORD": CANARY,
    "HUBSPOT_ACCESS_TOKEN": f"hub-{CANARY}",
    "SNOWFLAKE_ACCOUNT": "acme-sophia",
    "ESTUARY_SNOWFLAKE_PRIVATE_KEY": f"-----BEGIN PRIVATE KEY-----{CANARY}-----END PRIVATE KEY-----",
}
FAST = {
    "request_timeout_seconds": 2.0,
    "max_attempts": 8,
    "initial_backoff_seconds": 0.01,
    "max_backoff_seconds": 0.05,
    "max_retry_seconds": 15.0,
    "poll_interval_seconds": 0.01,
    "publish_timeout_seconds": 15.0,
    "caught_up_timeout_seconds": 5.0,
}


@pytest.fixture
def fake() -> Iterator[FakeEstuary]:
    """A fresh fake control plane on a free port."""
    with FakeEstuary() as server:
        yield server


@pytest.fixture
def platform_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The platform catalog's placeholders, the secret ones set to canary values."""
    for name, value in PLATFORM_ENV.items():
        monkeypatch.setenv(name, value)
    return PLATFORM_ENV


def make_workspace(
    fake: FakeEstuary, catalog_path: Path = PLATFORM_CATALOG_DIR, **overrides: object
) -> EstuaryWorkspace:
    """A workspace pointed at the fake, with a fresh refresh token and fast retries."""
    settings = {**FAST, **fake.urls(), "catalog_path": str(catalog_path), **overrides}
    settings.setdefault("api_token", fake.issue_refresh_token())
    return EstuaryWorkspace(**settings)


@pytest.fixture
def workspace(fake: FakeEstuary, platform_env: dict[str, str]) -> EstuaryWorkspace:
    """A workspace over the platform catalog, talking to the fake."""
    return make_workspace(fake)
