"""Snowflake names the way Estuary's materialize-snowflake makes them, always quoted when written into SQL.

Estuary leaves a field's name unquoted when it is simple (letters, digits and underscores, not starting
with a digit) and not a reserved word, so Snowflake resolves it UPPER-CASED; any other name is quoted and
keeps its exact spelling. :func:`column_name` gives the resulting name and :func:`ident` quotes it, so
generated SQL never depends on a name being safe to leave bare (``select``, ``r``, ``_meta/op``).
"""

from __future__ import annotations

import re

SIMPLE = re.compile(r"^[^\W\d]\w*$")

RESERVED = frozenset(
    [
        "account",
        "all",
        "alter",
        "and",
        "any",
        "as",
        "between",
        "by",
        "case",
        "cast",
        "check",
        "column",
        "connect",
        "connection",
        "constraint",
        "create",
        "cross",
        "current",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_user",
        "database",
        "delete",
        "distinct",
        "drop",
        "dual",
        "else",
        "exists",
        "false",
        "following",
        "for",
        "from",
        "full",
        "grant",
        "group",
        "gscluster",
        "having",
        "ilike",
        "in",
        "increment",
        "inner",
        "insert",
        "intersect",
        "into",
        "is",
        "issue",
        "join",
        "lateral",
        "left",
        "like",
        "localtime",
        "localtimestamp",
        "minus",
        "natural",
        "not",
        "null",
        "of",
        "on",
        "or",
        "order",
        "organization",
        "qualify",
        "regexp",
        "revoke",
        "right",
        "rlike",
        "row",
        "rows",
        "sample",
        "schema",
        "select",
        "set",
        "some",
        "start",
        "table",
        "tablesample",
        "then",
        "to",
        "trigger",
        "true",
        "try_cast",
        "union",
        "unique",
        "update",
        "using",
        "values",
        "view",
        "when",
        "whenever",
        "where",
        "with",
    ]
)
"""Snowflake's reserved keywords (docs.snowflake.com/en/sql-reference/reserved-keywords), as Estuary lists them."""


def is_simple(name: str) -> bool:
    """Whether Estuary would write ``name`` unquoted (so Snowflake stores it upper-cased)."""
    return bool(SIMPLE.match(name)) and name.lower() not in RESERVED


def column_name(name: str) -> str:
    """The name Snowflake stores for a field or table called ``name`` by Estuary."""
    return name.upper() if is_simple(name) else name


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier resolving to :func:`column_name`."""
    return '"' + column_name(name).replace('"', '""') + '"'
