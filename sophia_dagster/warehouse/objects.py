"""The databases, schemas, warehouse, roles and grants the platform needs, as code.

`plan` turns the declaration into statements that are safe to run twice (`IF NOT EXISTS`; grants are
idempotent in Snowflake; every role is granted to SYSADMIN, Snowflake's recommended hierarchy).
`apply` first asks the warehouse what exists, creates only what is missing, and reports what it
created, so a second run reports no change. The embedded engine has no roles, warehouses or grants,
so there only the databases and schemas are applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DATABASE = "SOPHIA"
RAW_SCHEMA = "RAW"
ANALYTICS_SCHEMA = "ANALYTICS"
MEMORY_SCHEMA = "SOPHIA_MEMORY"  # not MEMORY: DuckDB, behind the embedded engine, reserves that name
WAREHOUSE = "SOPHIA_AI_COMPUTE_WH"


def sql_literal(text: str) -> str:
    """`text` as a single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Role:
    """An account role and the privileges it is granted (`privilege ON object` strings)."""

    name: str
    comment: str
    grants: tuple[str, ...]


@dataclass(frozen=True)
class Objects:
    """Everything the platform creates in an account."""

    database: str = DATABASE
    schemas: tuple[str, ...] = (RAW_SCHEMA, ANALYTICS_SCHEMA, MEMORY_SCHEMA)
    warehouse: str = WAREHOUSE

    @property
    def roles(self) -> tuple[Role, ...]:
        """The platform's roles with their grants on this database and warehouse."""
        return default_roles(self.database, self.warehouse)


def _schema_grants(database: str, schema: str, write: bool) -> tuple[str, ...]:
    """Use a schema and read its tables (now and future); `write` adds creating and changing them."""
    qualified = f"{database}.{schema}"
    reads = (
        f"USAGE ON SCHEMA {qualified}",
        f"SELECT ON ALL TABLES IN SCHEMA {qualified}",
        f"SELECT ON FUTURE TABLES IN SCHEMA {qualified}",
        f"SELECT ON FUTURE DYNAMIC TABLES IN SCHEMA {qualified}",
    )
    writes = (
        f"CREATE TABLE ON SCHEMA {qualified}",
        f"CREATE STAGE ON SCHEMA {qualified}",
        f"INSERT, UPDATE, DELETE, TRUNCATE ON FUTURE TABLES IN SCHEMA {qualified}",
    )
    return reads + writes if write else reads


def default_roles(database: str, warehouse: str) -> tuple[Role, ...]:
    """Estuary lands RAW; the transformer builds ANALYTICS; the app owns MEMORY; readers read ANALYTICS."""
    base = (f"USAGE ON WAREHOUSE {warehouse}", f"USAGE ON DATABASE {database}")
    return (
        Role("SOPHIA_ESTUARY_ROLE", "Estuary lands CDC into RAW", base + _schema_grants(database, RAW_SCHEMA, True)),
        Role(
            "SOPHIA_TRANSFORMER_ROLE",
            "Dagster analytics models (dynamic tables) over RAW",
            base
            + _schema_grants(database, RAW_SCHEMA, False)
            + _schema_grants(database, ANALYTICS_SCHEMA, True)
            + (f"CREATE DYNAMIC TABLE ON SCHEMA {database}.{ANALYTICS_SCHEMA}",),
        ),
        Role(
            "SOPHIA_APP_ROLE",
            "Sophia's memory tiers and AI services",
            base + _schema_grants(database, ANALYTICS_SCHEMA, False) + _schema_grants(database, MEMORY_SCHEMA, True),
        ),
        Role(
            "SOPHIA_READER_ROLE",
            "Read-only analytics for people and BI tools",
            base + _schema_grants(database, ANALYTICS_SCHEMA, False),
        ),
    )


@dataclass(frozen=True)
class Statement:
    """One idempotent DDL statement and the object it ensures (`kind`, `name`); grants have kind 'grant'."""

    kind: str
    name: str
    sql: str


def plan(objects: Objects, embedded: bool) -> list[Statement]:
    """The statements that bring an account to `objects`; the embedded engine gets databases and schemas only."""
    statements = [Statement("database", objects.database, f"CREATE DATABASE IF NOT EXISTS {objects.database}")]
    statements += [
        Statement("schema", f"{objects.database}.{schema}", f"CREATE SCHEMA IF NOT EXISTS {objects.database}.{schema}")
        for schema in objects.schemas
    ]
    if embedded:
        return statements
    statements.append(
        Statement(
            "warehouse",
            objects.warehouse,
            f"CREATE WAREHOUSE IF NOT EXISTS {objects.warehouse} WAREHOUSE_SIZE = 'XSMALL' AUTO_SUSPEND = 60 "
            "AUTO_RESUME = TRUE INITIALLY_SUSPENDED = TRUE",
        )
    )
    for role in objects.roles:
        create = f"CREATE ROLE IF NOT EXISTS {role.name} COMMENT = {sql_literal(role.comment)}"
        statements.append(Statement("role", role.name, create))
        statements += [Statement("grant", role.name, f"GRANT {grant} TO ROLE {role.name}") for grant in role.grants]
        statements.append(Statement("grant", role.name, f"GRANT ROLE {role.name} TO ROLE SYSADMIN"))
    return statements


def _existing(cursor: Any, statement: Statement) -> bool:
    """Whether the object a CREATE statement ensures is already there (SHOW ... LIKE)."""
    parent, _, name = statement.name.rpartition(".")
    scope = f" IN DATABASE {parent}" if statement.kind == "schema" else ""
    show = {"database": "DATABASES", "schema": "SCHEMAS", "warehouse": "WAREHOUSES", "role": "ROLES"}[statement.kind]
    cursor.execute(f"SHOW {show} LIKE '{name}'{scope}")
    column = [d.name.lower() for d in cursor.description].index("name")
    return any(str(row[column]).upper() == name.upper() for row in cursor.fetchall())


def apply(cursor: Any, statements: list[Statement]) -> dict[str, list[str]]:
    """Run what is missing; returns the names created, those already present, and the grants applied."""
    report: dict[str, list[str]] = {"created": [], "unchanged": [], "grants": []}
    for statement in statements:
        if statement.kind == "grant":
            cursor.execute(statement.sql)
            report["grants"].append(statement.sql)
        elif _existing(cursor, statement):
            report["unchanged"].append(f"{statement.kind} {statement.name}")
        else:
            cursor.execute(statement.sql)
            report["created"].append(f"{statement.kind} {statement.name}")
    return report
