"""Transactions and cleanup on a warehouse cursor that never hide the error that made them necessary.

A ROLLBACK or DROP on a failure path runs on a connection that may itself be broken (the server died).
Its own failure is logged and dropped, so the error the step reports is the one that happened first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


def cleanup(cursor: Any, statement: str) -> None:
    """Run a cleanup statement; if it fails, log that and carry on (the caller has a better error to report).

    Example:
        ``cleanup(cursor, f"DROP TABLE IF EXISTS {staging}")``
    """
    try:
        cursor.execute(statement)
    except Exception as exc:  # a failed cleanup must never replace the error being handled
        log.warning("cleanup %r failed and was skipped: %s: %s", statement, type(exc).__name__, exc)


@contextmanager
def transaction(cursor: Any) -> Iterator[None]:
    """BEGIN ... COMMIT around the block; on any error ROLLBACK (best effort) and re-raise the original error.

    Example:
        ``with transaction(cursor): cursor.execute("DELETE ..."); cursor.execute("INSERT ...")``
    """
    cursor.execute("BEGIN")
    try:
        yield
        cursor.execute("COMMIT")
    except BaseException:
        cleanup(cursor, "ROLLBACK")
        raise
