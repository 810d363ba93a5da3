"""A fake Snowflake SQL API that answers Cortex function calls, for testing L5 in prod mode offline.

It speaks the connector's protocol the way Snowflake does: a login returns a session token; a query
returns a JSON rowset with its rowtype (COMMIT and ROLLBACK succeed); SQL it does not know gets Snowflake's error shape (HTTP 200,
`success: false`, an error code and message), which the connector raises as `ProgrammingError`.
Every SQL text received is recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dagster_snowflake import SnowflakeResource

from sophia_dagster.memory.l5_cortex import CortexResource
from tests.fakes.http import JsonHandler, serving

CORTEX_CALL = re.compile(r"^SELECT SNOWFLAKE\.CORTEX\.(SUMMARIZE|SENTIMENT|TRANSLATE|COMPLETE)\((.*)\)$", re.S)
ANSWERS = {
    "SUMMARIZE": ("text", "Customer wants a discount."),
    "SENTIMENT": ("real", "0.62"),
    "TRANSLATE": ("text", "Hello world"),
    "COMPLETE": ("text", "Offer a pilot."),
}


@dataclass
class FakeCortex:
    """The port the fake listens on and every SQL text it was sent."""

    port: int = 0
    queries: list[str] = field(default_factory=list)


def _result(name: str, column_type: str, value: str) -> dict[str, Any]:
    rowtype = [
        {
            "name": name,
            "database": "",
            "schema": "",
            "table": "",
            "type": column_type,
            "nullable": True,
            "length": None,
            "byteLength": None,
            "precision": None,
            "scale": None,
            "collation": None,
        }
    ]
    return {
        "data": {
            "parameters": [],
            "rowtype": rowtype,
            "rowset": [[value]],
            "total": 1,
            "returned": 1,
            "queryId": "01b2c3d4-0000-0001-0000-000000000001",
            "statementTypeId": 4096,
            "queryResultFormat": "json",
        },
        "success": True,
    }


def _query_reply(sql: str) -> dict[str, Any]:
    if sql.strip().upper() in ("COMMIT", "ROLLBACK"):
        return _result("status", "text", "Statement executed successfully.")
    match = CORTEX_CALL.match(sql.strip())
    if match is None:
        return {
            "data": {"errorCode": "002003", "sqlState": "02000"},
            "code": "002003",
            "success": False,
            "message": f"SQL compilation error: Object does not exist or not authorized: {sql[:60]}",
        }
    return _result(f"SNOWFLAKE.CORTEX.{match.group(1)}", *ANSWERS[match.group(1)])


def _handler(fake: FakeCortex) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = self.read_body()
            if self.path.startswith("/session/v1/login-request"):
                reply: dict[str, Any] = {
                    "data": {
                        "token": "session-token",
                        "masterToken": "master-token",
                        "parameters": [],
                        "sessionInfo": {},
                    },
                    "success": True,
                }
            elif self.path.startswith("/queries/v1/query-request"):
                sql = json.loads(body)["sqlText"]
                fake.queries.append(sql)
                reply = _query_reply(sql)
            else:
                reply = {"data": None, "success": True}
            self.reply_json(200, reply)

    return Handler


@contextmanager
def fake_cortex() -> Iterator[FakeCortex]:
    """Serve the fake on a free loopback port for the duration of the block."""
    fake = FakeCortex()
    with serving(_handler(fake)) as port:
        fake.port = port
        yield fake


def prod_cortex(port: int) -> CortexResource:
    """A Cortex resource in prod mode whose `SnowflakeResource` talks to the fake on `port`."""
    snowflake = SnowflakeResource(
        account="acme-xy123",
        user="svc",
        password="canary-cortex-pw",
        database="SOPHIA",
        schema="RAW",
        additional_snowflake_connection_args={
            "host": "127.0.0.1",
            "port": port,
            "protocol": "http",
            "login_timeout": 10,
            "network_timeout": 10,
        },
    )
    return CortexResource(snowflake=snowflake, available=True)
