"""Warehouse sessions of data-plane runners that died mid-transaction.

A runner killed between BEGIN and COMMIT leaves its session's transaction open in the warehouse, where
it keeps row versions locked; the next runner would conflict with it. Each runner records its session
tokens; the next one resumes a dead runner's session (the connector's ``session_token``/``master_token``),
rolls it back and closes it before writing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import snowflake.connector
from dagster_snowflake import SnowflakeResource

# How a fresh login authenticates; resuming a recorded session must use its tokens instead.
LOGIN_ARGS = frozenset(
    {"password", "private_key", "private_key_file", "private_key_file_pwd", "token", "authenticator"}
)


def remember(conn: Any, path: Path) -> None:
    """Record the session of ``conn`` as this process's (the file is owner-only before the tokens are written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = conn.rest.token
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"pid": os.getpid(), "token": token, "master": conn.rest.master_token or token}))


def forget(path: Path) -> None:
    """The session ended cleanly: nothing to recover."""
    path.unlink(missing_ok=True)


def roll_back_abandoned(resource: SnowflakeResource, path: Path) -> bool:
    """Roll back and close the session a dead runner left behind; True when there was one to end."""
    try:
        recorded = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return False
    args = {k: v for k, v in resource._connection_args.items() if k not in LOGIN_ARGS}
    try:
        conn = snowflake.connector.connect(
            **{**args, "network_timeout": 30}, session_token=recorded["token"], master_token=recorded["master"]
        )
    except snowflake.connector.errors.Error:
        forget(path)
        return False
    try:
        conn.cursor().execute("ROLLBACK")
    finally:
        conn.close()
    forget(path)
    return True
