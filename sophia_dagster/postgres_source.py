"""The source PostgreSQL as a resource: the configured database, or the embedded one seeded with demo data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg
from pydantic import Field

from sophia_dagster.config import Settings
from sophia_dagster.embedded.demo import seed_demo
from sophia_dagster.embedded.postgres import ensure_embedded_postgres


class SourcePostgres(dg.ConfigurableResource):
    """Where the platform's operational data lives (what Estuary's PostgreSQL capture reads)."""

    dsn: str | None = Field(None, description="Connection string; the embedded server when unset")
    state_dir: str = Field(".sophia", description="State directory of the embedded server")

    def get_dsn(self) -> str:
        """The DSN to connect with, starting and seeding the embedded server when no DSN is configured."""
        if self.dsn:
            return self.dsn
        dsn = ensure_embedded_postgres(Path(self.state_dir))
        seed_demo(dsn)
        return dsn

    @contextmanager
    def connect(self, **kwargs: object) -> Iterator[psycopg.Connection]:
        """A psycopg connection to the source database."""
        with psycopg.connect(self.get_dsn(), **kwargs) as conn:
            yield conn


def source_postgres(settings: Settings) -> SourcePostgres:
    """The resource for `settings`: POSTGRES_DSN bound by variable name (never shown in the UI), else embedded."""
    dsn = dg.EnvVar("POSTGRES_DSN") if settings.postgres_dsn is not None else None
    return SourcePostgres(dsn=dsn, state_dir=str(settings.state_dir))
