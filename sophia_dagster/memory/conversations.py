"""L2 conversation memory: chat messages per user in a PostgreSQL table (the seed used Mem0 for this)."""

from __future__ import annotations

from typing import Any

from sophia_dagster.memory import codec
from sophia_dagster.memory.postgres import PostgresTier

DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.conversation_messages (id bigserial PRIMARY KEY, user_id text NOT NULL, "
    "role text NOT NULL, content text NOT NULL, metadata jsonb NOT NULL DEFAULT '{{}}', "
    "created_at timestamptz NOT NULL DEFAULT now())",
    "CREATE INDEX IF NOT EXISTS conversation_messages_user ON {schema}.conversation_messages (user_id, id DESC)",
    "ALTER TABLE {schema}.conversation_messages ADD COLUMN IF NOT EXISTS idempotency_key text",
    "CREATE UNIQUE INDEX IF NOT EXISTS conversation_messages_idempotency"
    " ON {schema}.conversation_messages (user_id, idempotency_key)",
)
ROLES = ("user", "assistant", "system", "tool")


class ConversationStore(PostgresTier):
    """Append and recall the messages of a user's conversations."""

    DDL = DDL
    TIER = "L2 postgres"

    def append(
        self,
        user_id: str,
        role: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Store one message; returns its id. A retry with the same `idempotency_key` returns the first id."""
        if role not in ROLES:
            raise ValueError(f"message role {role!r} is not one of {', '.join(ROLES)}")
        table = f"{self.schema_name}.conversation_messages"
        with self.connection() as conn:
            row = conn.execute(
                f"INSERT INTO {table} (user_id, role, content, metadata, idempotency_key) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id",
                (user_id, role, content, codec.dumps_json(metadata or {}), idempotency_key),
            ).fetchone()
            if row is None:
                row = conn.execute(
                    f"SELECT id FROM {table} WHERE user_id = %s AND idempotency_key = %s", (user_id, idempotency_key)
                ).fetchone()
        return int(row[0])

    def recent(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        """The user's last `limit` messages, oldest first."""
        with self.connection() as conn:
            rows = conn.execute(
                f"SELECT id, role, content, metadata, created_at FROM {self.schema_name}.conversation_messages"
                " WHERE user_id = %s ORDER BY id DESC LIMIT %s",
                (user_id, limit),
            ).fetchall()
        return [
            {"id": id_, "role": role, "content": content, "metadata": metadata, "created_at": created.isoformat()}
            for id_, role, content, metadata, created in reversed(rows)
        ]
