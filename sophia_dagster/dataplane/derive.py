"""SQLite derivations in the embedded data plane: each captured document goes through the lambdas of the transforms
reading its collection, and what they output forms the derived collection (Estuary's ``derive-sqlite``, see
:mod:`.lambdas`).

A derivation's database lives at ``<state dir>/flow/derivations/<name>.sqlite``: its migrations (run once each, in
order, recorded in ``flow_migrations`` as Estuary does) create its own tables, which its lambdas read and write.
The database also holds the derivation's checkpoint: the source LSN up to which its state reflects every source
transaction. It is always inside one open SQLite transaction; a commit of the data plane writes the checkpoint and
commits that transaction.

Exactly once. For a batch of source transactions ending at LSN E, the pipeline

1. runs the lambdas over the changes of transactions past the derivation's checkpoint D (inside the open SQLite
   transaction) and hands the outputs of transactions past each derived binding's warehouse checkpoint to it;
2. commits the warehouse: rows and binding checkpoints (E) in one transaction;
3. commits SQLite: state changes and checkpoint E in one transaction;
4. only then advances the replication slot, to the lowest of every warehouse and derivation checkpoint.

A crash before 2 leaves both at D: the batch is read and derived again from the same state. A crash between 2 and
3 leaves the warehouse at E and SQLite at D (its uncommitted changes are discarded when the file is reopened): the
slot is still at or before D, so the batch is read again, the lambdas re-apply it to the state as of D, and their
outputs are dropped because the derived bindings' checkpoints already cover E. A crash after 3 re-reads nothing
either side needs. Lambdas must be deterministic (no ``random()`` or ``now()``) for a re-run to equal the first.

A failing lambda rolls the SQLite transaction back (the state stays as of the last commit) and stops the run with
the derivation, transform and source document key: nothing of the batch reaches the warehouse.

Differences from Estuary, all documented in the README: one shard reads every transform in source commit order
(so every ``shuffle`` is honoured); a derived document that does not say ``_meta/op`` gets ``_meta: {op: c}`` (the
data plane's stand-in for the ``_meta/uuid`` Estuary adds), and one that says ``d`` deletes its key downstream;
a backfill runs a fresh database over a snapshot of the sources, so stateful lambdas see each source row once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sophia_dagster.dataplane.capture import Change, Transaction
from sophia_dagster.dataplane.errors import DataPlaneError
from sophia_dagster.dataplane.lambdas import Field, Lambda, LambdaError, split_block

BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS flow_migrations (script_index INTEGER PRIMARY KEY NOT NULL, script TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flow_local_checkpoint (rowid INTEGER PRIMARY KEY CHECK (rowid = 0), lsn INTEGER NOT NULL)",
)


@dataclass(frozen=True)
class TransformSpec:
    """One transform run here: the source table of its collection, its lambda block and the source's fields."""

    name: str
    collection: str
    table: str
    block: str
    key: tuple[str, ...]
    fields: dict[str, Field] = field(hash=False, compare=False)


@dataclass(frozen=True)
class DerivationSpec:
    """A SQLite derivation the embedded data plane runs: its migrations and transforms."""

    name: str
    migrations: tuple[str, ...]
    transforms: tuple[TransformSpec, ...]

    @property
    def source(self) -> str:
        """The name its warehouse bindings give as their source (where its output changes come from)."""
        return f"derivation {self.name}"

    @property
    def tables(self) -> set[str]:
        return {t.table for t in self.transforms}


class Derivation:
    """One derivation's SQLite database, migrations, lambdas and checkpoint."""

    def __init__(self, spec: DerivationSpec, directory: Path) -> None:
        self.spec = spec
        self.path = directory / (spec.name.replace("/", "_") + ".sqlite")
        self.conn: sqlite3.Connection | None = None
        self.checkpoint: int | None = None
        self.lambdas: dict[str, list[tuple[TransformSpec, list[Lambda]]]] = {}

    def open(self) -> None:
        """Open the database, bootstrap it, apply new migrations, build the lambdas and read the checkpoint."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open(str(self.path))
        row = self.conn.execute("SELECT lsn FROM flow_local_checkpoint").fetchone()
        self.checkpoint = None if row is None else int(row[0])

    def check(self) -> None:
        """Publish-time check: every migration runs and every lambda builds, in a scratch database."""
        self._open(":memory:")
        self.close()

    def _open(self, target: str) -> None:
        self.conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("BEGIN IMMEDIATE")
            for statement in BOOTSTRAP:
                self.conn.execute(statement)
            self._migrate()
            self._build()
        except (sqlite3.Error, LambdaError) as exc:
            self.close()
            raise DataPlaneError(f"derivation {self.spec.name}: {exc}") from None

    def _migrate(self) -> None:
        applied = self.conn.execute("SELECT COALESCE(MAX(script_index) + 1, 0) FROM flow_migrations").fetchone()[0]
        for index, block in enumerate(self.spec.migrations):
            if index < applied:
                continue
            try:
                for statement in split_block(block):
                    self.conn.execute(statement)
            except (sqlite3.Error, LambdaError) as exc:
                raise LambdaError(f"migration {index} failed: {exc}") from None
            self.conn.execute("INSERT INTO flow_migrations (script_index, script) VALUES (?, ?)", (index, block))

    def _build(self) -> None:
        self.lambdas = {}
        for transform in self.spec.transforms:
            try:
                stack = [Lambda(self.conn, s, transform.fields) for s in split_block(transform.block)]
            except LambdaError as exc:
                raise LambdaError(f"lambda of transform {transform.name} is invalid: {exc}") from None
            self.lambdas.setdefault(transform.table, []).append((transform, stack))

    def reset(self) -> None:
        """Start again from an empty database (a backfill)."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self.open()

    def publish(self, table: str, document: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The documents the transforms reading ``table`` output for one of its documents, in order."""
        for transform, stack in self.lambdas.get(table, ()):
            for lambda_ in stack:
                try:
                    outputs = lambda_.invoke(document)
                except (sqlite3.Error, LambdaError, OverflowError) as exc:
                    self.rollback()
                    key = {k: document.get(k) for k in transform.key}
                    raise DataPlaneError(
                        f"derivation {self.spec.name} transform {transform.name}: lambda failed on the document of "
                        f"{transform.collection} with key {key}: {exc}. Its state is kept as of its last commit; fix "
                        f"the lambda and run again"
                    ) from None
                for output in outputs:
                    yield self._with_op(output, transform)

    def _with_op(self, document: dict[str, Any], transform: TransformSpec) -> dict[str, Any]:
        meta = document.get("_meta")
        if meta is None:
            document["_meta"] = {"op": "c"}
        elif not isinstance(meta, dict):
            self.rollback()
            raise DataPlaneError(
                f"derivation {self.spec.name} transform {transform.name}: output _meta must be an object, got {meta!r}"
            )
        else:
            meta.setdefault("op", "c")
        return document

    def commit(self, lsn: int) -> None:
        """Commit the state with checkpoint ``lsn`` (after the warehouse committed the outputs up to it)."""
        try:
            self.conn.execute(
                "INSERT INTO flow_local_checkpoint (rowid, lsn) VALUES (0, ?) ON CONFLICT (rowid) DO UPDATE SET lsn = ?",
                (lsn, lsn),
            )
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.rollback()
            raise DataPlaneError(f"derivation {self.spec.name}: cannot commit its state: {exc}") from None
        self.checkpoint = lsn
        self.conn.execute("BEGIN IMMEDIATE")

    def rollback(self) -> None:
        """Drop uncommitted state changes."""
        if self.conn is not None and self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
            self.conn.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Derivations:
    """The derivations of one pipeline: derive a batch, commit after the warehouse, backfill from a snapshot."""

    def __init__(self, specs: Iterable[DerivationSpec], directory: Path) -> None:
        self.all = [Derivation(spec, directory) for spec in specs]

    def open(self) -> None:
        for derivation in self.all:
            derivation.open()

    def check(self) -> None:
        """Refuse a migration that fails or a lambda that does not build (naming derivation and transform)."""
        for derivation in self.all:
            derivation.check()

    def close(self) -> None:
        for derivation in self.all:
            derivation.close()

    def checkpoints(self) -> list[int]:
        """The checkpoints the replication slot must not pass."""
        return [d.checkpoint for d in self.all if d.checkpoint is not None]

    def stale(self, checkpoints: dict[str, int], bindings: dict[str, set[str]], changed: set[str]) -> list[Derivation]:
        """Derivations to run again from a snapshot: no checkpoint of their own, or a binding (table names in
        ``bindings``) without a warehouse checkpoint or whose table gained columns."""
        return [
            d
            for d in self.all
            if d.checkpoint is None or any(t not in checkpoints or t in changed for t in bindings.get(d.spec.name, ()))
        ]

    def derive(self, transactions: list[Transaction]) -> list[Transaction]:
        """``transactions`` with, appended to each, the output changes of every derivation not past it yet."""
        if not self.all:
            return transactions
        derived = []
        for txn in transactions:
            outputs = [
                Change(d.spec.source, doc)
                for change in txn.changes
                if not change.truncate
                for d in self.all
                if d.checkpoint is None or txn.end_lsn > d.checkpoint
                for doc in d.publish(change.table, change.document)
            ]
            derived.append(
                Transaction(txn.xid, txn.final_lsn, txn.end_lsn, txn.commit_time, [*txn.changes, *outputs])
                if outputs
                else txn
            )
        return derived

    def commit(self, lsn: int, only: Iterable[Derivation] | None = None) -> None:
        """Commit the derivations' state as of ``lsn`` (call after the warehouse commit)."""
        for derivation in self.all if only is None else only:
            if derivation.checkpoint is None or lsn > derivation.checkpoint:
                derivation.commit(lsn)
