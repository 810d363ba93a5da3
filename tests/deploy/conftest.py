"""Fixtures for the deployment tests: a throwaway Dagster database on the machine's PostgreSQL, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dagster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """DAGSTER_HOME holding deploy/dagster.yaml, and DAGSTER_PG_* naming a database created for this test.

    The database is dropped afterwards (with every connection still open to it).
    """
    name = f"dagster_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": name,
    }
    try:
        yield env
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def dagster_environ(dagster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """`dagster_env` applied to this process."""
    for key, value in dagster_env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ}
