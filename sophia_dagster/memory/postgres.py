"""The base of the PostgreSQL-backed stores (L2 documents, L2 conversations, L3 pgvector)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import dagster as dg
import psycopg
from psycopg import sql
from pydantic import Field, PrivateAttr

from sophia_dagster.embedded.errors import EmbeddedServerError
from sophia_dagster.memory.errors import TierUnavailableError
from sophia_dagster.postgres_source import SourcePostgres

DDL_LOCK = 6_060_606
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
_READY: set[tuple[str, str, tuple[str, ...]]] = set()


def _ensure_schema(conn: psycopg.Connection, schema: str, statements: tuple[str, ...]) -> None:
    """Create `schema` and run the `{schema}`-templated DDL, serialized across processes by an advisory lock."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for statement in statements:
            conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))


class PostgresTier(dg.ConfigurableResource):
    """A store kept in PostgreSQL: where it connects, and the tables (`DDL`) it needs there."""

    DDL: ClassVar[tuple[str, ...]] = ()
    TIER: ClassVar[str] = "postgres"

    postgres: SourcePostgres
    schema_name: str = Field("sophia_memory", pattern=IDENTIFIER, description="PostgreSQL schema of the tables")
    _dsn: str | None = PrivateAttr(None)

    @property
    def tier(self) -> str:
        """The tier's name in messages and metadata."""
        return self.TIER

    def _connect(self) -> psycopg.Connection:
        if self._dsn is None:
            self._dsn = self.postgres.get_dsn()
        try:
            return psycopg.connect(self._dsn, connect_timeout=10)
        except psycopg.OperationalError:
            if self.postgres.dsn:
                raise
            self._dsn = self.postgres.get_dsn()  # the embedded server stopped: start it again
            return psycopg.connect(self._dsn, connect_timeout=10)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection with this store's tables in place (created once per process and database).

        The DSN is resolved once (locating or starting the embedded server); an embedded server that has
        stopped since is started again; an unreachable server becomes `TierUnavailableError`.
        """
        try:
            conn = self._connect()
        except (psycopg.OperationalError, EmbeddedServerError) as exc:
            raise TierUnavailableError(f"{self.tier}: the PostgreSQL server cannot be reached: {exc}") from exc
        with conn:
            marker = (self._dsn, self.schema_name, self.DDL)
            if marker not in _READY:
                _ensure_schema(conn, self.schema_name, self.DDL)
                _READY.add(marker)
            yield conn
