"""The embedded data plane's run loop: PostgreSQL CDC -> warehouse, exactly once.

Per binding, the warehouse holds the source LSN up to which it reflects every transaction (a commit
whose end LSN is at or below it). A run:

1. validates the source tables and makes sure the publication and slot exist (a checkpoint without its
   slot, or a slot ahead of the checkpoints, stops with a message: changes would be lost);
2. backfills bindings without a checkpoint (or whose table gained a column) from a snapshot exactly
   consistent with a stream position X, committing the rows and checkpoint X together;
3. peeks committed transactions from the slot, skips per binding what its checkpoint already covers,
   reduces them per key, commits rows + checkpoints in one warehouse transaction, and only then
   advances the slot.

SQLite derivations of the capture's collections run inside this loop (:mod:`.derive`, which explains how they
stay exactly once): their outputs are one more source of documents for the bindings reading them, and the slot
never passes a derivation's own checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dagster_snowflake import SnowflakeResource

from sophia_dagster.dataplane import sessions
from sophia_dagster.dataplane.capture import Change, PostgresCapture, Transaction, backfill_meta
from sophia_dagster.dataplane.derive import Derivation, Derivations
from sophia_dagster.dataplane.errors import DataPlaneError
from sophia_dagster.dataplane.materialize import (
    Column,
    Load,
    Materializer,
    TableBinding,
    data_plane_connection,
    use_schema,
)
from sophia_dagster.dataplane.pgoutput import lsn_to_str
from sophia_dagster.dataplane.plan import Plan, source_columns
from sophia_dagster.dataplane.state import FlowState
from sophia_dagster.dataplane.values import decode

logger = logging.getLogger(__name__)
OPS = {"c": "inserted", "u": "updated", "d": "deleted"}
IDLE_CHECKPOINT_SECONDS = 5.0


@dataclass
class RunReport:
    """What one run moved, and where it left the stream."""

    counts: dict[str, Counter] = field(default_factory=dict)
    backfilled: dict[str, int] = field(default_factory=dict)
    lsn: int = 0
    source_lsn: int = 0
    commits: int = 0
    duration_seconds: float = 0.0
    ran_here: bool = True
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per collection, where its capture stands (LSN and lag, or a HubSpot cursor), as EstuaryMetadataSet fields."""

    def count(self, collection: str, op: str, n: int = 1) -> None:
        self.counts.setdefault(collection, Counter())[OPS[op]] += n

    @property
    def lag_bytes(self) -> int:
        return max(0, self.source_lsn - self.lsn)

    def totals(self) -> Counter:
        total: Counter = Counter()
        for counts in self.counts.values():
            total.update(counts)
        return total

    def moved(self) -> dict[str, Counter]:
        """Per collection: rows inserted, updated, deleted and backfilled (backfilled rows count as inserted too)."""
        moved = {collection: Counter(counts) for collection, counts in self.counts.items()}
        for collection, rows in self.backfilled.items():
            moved.setdefault(collection, Counter())["backfilled"] += rows
        return moved

    @classmethod
    def merged(cls, reports: list[RunReport]) -> RunReport:
        """One report for runs of several captures side by side."""
        merged = cls(ran_here=all(r.ran_here for r in reports))
        for report in reports:
            merged.counts.update(report.counts)
            merged.backfilled.update(report.backfilled)
            merged.positions.update(report.positions)
            merged.commits += report.commits
            merged.duration_seconds = max(merged.duration_seconds, report.duration_seconds)
            if report.source_lsn:
                merged.lsn, merged.source_lsn = report.lsn, report.source_lsn
        return merged


class _Reduction:
    """One binding's documents of a batch: the last per key (standard) or all of them (delta updates)."""

    def __init__(self, binding: TableBinding) -> None:
        self.binding = binding
        self.by_key: dict[tuple, tuple[dict[str, Any], set[str]]] = {}
        self.replaced: dict[tuple, dict[str, Any]] = {}
        self.lookups: dict[tuple, tuple] = {}
        self.appended: list[dict[str, Any]] = []
        self.truncated = False

    def add(self, change: Change) -> None:
        if change.truncate:
            if not self.binding.delta:
                self.by_key.clear()
                self.truncated = True
            return
        doc = change.document
        if self.binding.delta:
            self.appended.append(doc)
            return
        key = tuple(doc.get(k) for k in self.binding.key)
        source = change.toast_key or key
        missing = set(change.unchanged)
        previous = self.replaced.get(source) if change.toast_key else None
        if source in self.by_key and doc["_meta"]["op"] != "d" and not change.toast_key:
            previous = self.by_key[source][0]
        if missing and previous is not None:
            for name in list(missing):
                if name in previous:
                    doc[name] = previous[name]
                    missing.discard(name)
        if missing:
            self.lookups[key] = self.lookups.get(source, source)
        if doc["_meta"]["op"] == "d" and key in self.by_key:
            self.replaced[key] = self.by_key[key][0]
        self.by_key[key] = (doc, missing)

    def documents(self) -> list[dict[str, Any]]:
        return self.appended if self.binding.delta else [doc for doc, _ in self.by_key.values()]

    def unresolved(self) -> list[tuple[tuple, dict[str, Any], set[str]]]:
        """Documents still lacking unchanged TOAST values, with the key whose stored document holds them."""
        return [(self.lookups.get(key, key), doc, missing) for key, (doc, missing) in self.by_key.items() if missing]


class Pipeline:
    """Runs one plan (a capture and the materialization it feeds) against a source and a warehouse."""

    def __init__(
        self, plan: Plan, dsn: str, snowflake: SnowflakeResource, state: FlowState, batch_messages: int = 50_000
    ) -> None:
        self.plan = plan
        self.snowflake = snowflake
        self.state = state
        self.batch_messages = batch_messages
        self.capture = PostgresCapture(dsn, plan.publication, plan.slot, list(plan.tables))
        self.materializer = Materializer(plan.materialization or plan.capture, plan.bindings, plan.hard_delete)
        self.checkpoints: dict[str, int] = {}
        self.derivations = Derivations(plan.derivations, state.root / "derivations")
        self._progress_recorded = 0.0
        self._pending_stats: dict[str, tuple[int, int]] = {}
        self.session_file = state.root / ("session-" + plan.capture.replace("/", "_") + ".json")

    @property
    def bindings(self) -> list[TableBinding]:
        return list(self.materializer.bindings.values())

    # entry points ------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Publish-time checks: every bound table exists and its rows can be told apart as its bindings need, and
        the derivations' migrations and lambdas build."""
        standard = frozenset(self.plan.sources[b.index] for b in self.bindings if not b.delta)
        self.capture.validate(standard)
        self.derivations.check()

    def prepare(self) -> None:
        """Publish-time checks and setup on the source: tables keyed, publication and slot present."""
        self.validate()
        self.capture.ensure_publication()

    def run(
        self,
        until_caught_up: bool = True,
        stop: threading.Event | None = None,
        poll_seconds: float = 0.02,
        wait_seconds: float = 900.0,
        report: RunReport | None = None,
    ) -> RunReport:
        """Run until caught up with the source's current LSN, or until ``stop`` is set (continuous mode).

        ``report`` is filled as the run goes (counts, LSN reached, source LSN), for a live view of it.
        """
        started = time.monotonic()
        if not self.bindings:
            raise DataPlaneError(f"no warehouse binding reads the collections of {self.plan.capture}: nothing to run")
        with self.state.runner_lock(self.plan.capture) as owned:
            report = (
                self._run(until_caught_up, stop or threading.Event(), poll_seconds, report or RunReport())
                if owned
                else self._await(wait_seconds)
            )
        report.duration_seconds = time.monotonic() - started
        return report

    def close(self) -> None:
        self.capture.close()
        self.derivations.close()

    # the loop ----------------------------------------------------------------------------------------------
    def _run(self, until_caught_up: bool, stop: threading.Event, poll_seconds: float, report: RunReport) -> RunReport:
        self.prepare()
        self.derivations.open()
        sessions.roll_back_abandoned(self.snowflake, self.session_file)
        with data_plane_connection(self.snowflake) as conn:
            sessions.remember(conn, self.session_file)
            try:
                cursor = conn.cursor()
                self._use_schema(cursor)
                stale = self._setup_tables(cursor)
                self.checkpoints = {b.table: lsn for b, lsn in self._stored_checkpoints(cursor).items()}
                derivations = self._restarted_derivations(stale)
                self._check_slot()
                changed = {b.index for b in stale}
                stale += [b for b in self.bindings if b.table not in self.checkpoints and b.index not in changed]
                stale = [b for b in stale if b.collection not in self.derived_collections]
                if stale:
                    self._backfill(cursor, stale, report)
                if derivations:
                    self._backfill_derived(cursor, derivations, report)
                target = self.capture.current_lsn() if until_caught_up else None
                self._stream(cursor, target, stop, poll_seconds, report)
            finally:
                sessions.forget(self.session_file)
                self._record_stats({}, flush=True)
        report.lsn = min(self.checkpoints.values(), default=0)
        report.source_lsn = self.capture.current_lsn()
        return self._positioned(report)

    def _positioned(self, report: RunReport) -> RunReport:
        """Record where each binding's collection stands: its LSN and the bytes of WAL still to read."""
        for binding in self.bindings:
            lsn = self.checkpoints.get(binding.table, report.lsn)
            report.positions[binding.collection] = {
                "lsn": lsn_to_str(lsn),
                "lag_bytes": max(0, report.source_lsn - lsn),
            }
        return report

    def _stream(self, cursor: Any, target: int | None, stop: threading.Event, poll: float, report: RunReport) -> None:
        last_bump = last_pause_check = time.monotonic()
        while not stop.is_set():
            upto = target if target is not None else self.capture.current_lsn()
            position = self._floor(upto)
            transactions = self.capture.read(upto, self.batch_messages, position)
            if transactions:
                self._apply(cursor, transactions, report)
            elif target is not None or time.monotonic() - last_bump > IDLE_CHECKPOINT_SECONDS:
                if position < upto:
                    self._commit_position(cursor, upto)
                last_bump = time.monotonic()
            report.lsn, report.source_lsn = min(self.checkpoints.values(), default=upto), upto
            if target is not None and not transactions:
                return
            if target is None and time.monotonic() - last_pause_check > 1.0:
                last_pause_check = time.monotonic()
                if self.state.task(self.plan.capture).get("disabled"):
                    logger.info("%s was paused; stopping", self.plan.capture)
                    return
            if not transactions:
                stop.wait(poll)

    def _apply(self, cursor: Any, transactions: list[Transaction], report: RunReport) -> None:
        """Commit one batch of transactions into the warehouse, then advance the slot."""
        transactions = self.derivations.derive(transactions)
        stale = self._changed_shapes()
        reductions = {b.index: _Reduction(b) for b in self.bindings if b.index not in {s.index for s in stale}}
        by_table: dict[str, list[_Reduction]] = {}
        for reduction in reductions.values():
            by_table.setdefault(self.plan.sources[reduction.binding.index], []).append(reduction)
        for txn in transactions:
            for change in txn.changes:
                counted = set()
                for reduction in by_table.get(change.table, ()):
                    if txn.end_lsn > self.checkpoints[reduction.binding.table]:
                        reduction.add(change)
                        if not change.truncate and reduction.binding.collection not in counted:
                            counted.add(reduction.binding.collection)
                            report.count(reduction.binding.collection, change.document["_meta"]["op"])
        self._resolve_toast(cursor, reductions.values())
        end = transactions[-1].end_lsn
        loads = self._stage(cursor, reductions.values())
        moved = {r.binding.table: max(self.checkpoints[r.binding.table], end) for r in reductions.values()}
        self.materializer.commit(cursor, loads, moved, _now())
        self.checkpoints.update(moved)
        self.derivations.commit(end)
        report.commits += 1
        self._record_stats(
            {
                r.binding.collection: (len(r.documents()), self.materializer.staged_bytes[r.binding.index])
                for r in reductions.values()
                if r.documents()
            }
        )
        if stale:
            for binding in stale:
                self.materializer.ensure_table(cursor, binding)
            self._backfill(cursor, stale, report)
        self.capture.advance(self._floor())

    def _stage(self, cursor: Any, reductions: Any) -> dict[int, Load]:
        batches = {reduction.binding.index: reduction.documents() for reduction in reductions}
        self.materializer.stage(cursor, batches)
        return {
            reduction.binding.index: Load(len(batches[reduction.binding.index]), truncated=reduction.truncated)
            for reduction in reductions
            if batches[reduction.binding.index] or reduction.truncated
        }

    def _resolve_toast(self, cursor: Any, reductions: Any) -> None:
        """Fill unchanged TOAST values of updates from the stored documents."""
        for reduction in reductions:
            unresolved = reduction.unresolved()
            if not unresolved:
                continue
            lookups = list(dict.fromkeys(key for key, _, _ in unresolved))
            stored = self.materializer.existing_documents(cursor, reduction.binding, lookups)
            for key, doc, missing in unresolved:
                previous = stored.get(key, {})
                for name in missing:
                    if name in previous:
                        doc[name] = previous[name]

    def _commit_position(self, cursor: Any, lsn: int) -> None:
        """Nothing captured up to ``lsn``: record that, so the slot can release the WAL."""
        moved = {table: max(value, lsn) for table, value in self.checkpoints.items()}
        self.materializer.commit(cursor, {}, moved, _now())
        self.checkpoints.update(moved)
        self.derivations.commit(lsn)
        self.capture.advance(self._floor())

    def _floor(self, default: int | None = 0) -> int | None:
        """The lowest warehouse or derivation checkpoint: the slot must not pass it."""
        return min([*self.checkpoints.values(), *self.derivations.checkpoints()], default=default)

    # backfill ----------------------------------------------------------------------------------------------
    def _backfill(self, cursor: Any, bindings: list[TableBinding], report: RunReport) -> None:
        """Replace the bindings' tables with a consistent snapshot and set their checkpoints to its LSN."""
        with self.capture.snapshot() as (lsn, snapshot):
            loads = {}
            for binding in bindings:
                source = self.capture.tables[self.plan.sources[binding.index]]
                rows = 0
                meta = backfill_meta(source)
                for documents, values in self.capture.backfill(snapshot, source):
                    rows += self.materializer.stage_values(cursor, binding.index, documents, values, meta)
                loads[binding.index] = Load(rows, replace=True)
                report.backfilled[binding.collection] = rows
                report.count(binding.collection, "c", rows)
            self.materializer.commit(cursor, loads, {b.table: lsn for b in bindings}, _now())
        self.checkpoints.update({b.table: lsn for b in bindings})
        self._record_stats(
            {b.collection: (loads[b.index].rows, self.materializer.staged_bytes[b.index]) for b in bindings}
        )
        logger.info("backfilled %s as of %s", ", ".join(b.table for b in bindings), lsn_to_str(lsn))

    # derivations -------------------------------------------------------------------------------------------
    @property
    def derived_collections(self) -> set[str]:
        return {d.spec.name for d in self.derivations.all}

    def _restarted_derivations(self, changed: list[TableBinding]) -> list[Derivation]:
        """Derivations to run afresh from a snapshot (see :meth:`Derivations.stale`), their databases emptied."""
        tables: dict[str, set[str]] = {}
        for binding in self.bindings:
            tables.setdefault(binding.collection, set()).add(binding.table)
        stale = self.derivations.stale(self.checkpoints, tables, {b.table for b in changed})
        for derivation in stale:
            derivation.reset()
        return stale

    def _backfill_derived(self, cursor: Any, derivations: list[Derivation], report: RunReport) -> None:
        """Run ``derivations`` from empty databases over a consistent snapshot of their sources, replace their
        bindings' tables with the outputs, then commit their state: all as of the snapshot's LSN."""
        reductions = {
            b.index: _Reduction(b) for b in self.bindings if b.collection in {d.spec.name for d in derivations}
        }
        with self.capture.snapshot() as (lsn, snapshot):
            for derivation in derivations:
                reading = [r for r in reductions.values() if r.binding.collection == derivation.spec.name]
                for table in sorted(derivation.spec.tables):
                    meta = backfill_meta(self.capture.tables[table])
                    for documents, _ in self.capture.backfill(snapshot, self.capture.tables[table]):
                        for text in documents.to_pylist():
                            for output in derivation.publish(table, {**decode(text), "_meta": meta}):
                                for reduction in reading:
                                    reduction.add(Change(derivation.spec.source, output))
            batches = {index: reduction.documents() for index, reduction in reductions.items()}
            self.materializer.stage(cursor, batches)
            moved = {r.binding.table: lsn for r in reductions.values()}
            loads = {index: Load(len(documents), replace=True) for index, documents in batches.items()}
            self.materializer.commit(cursor, loads, moved, _now())
            self.derivations.commit(lsn, derivations)
        self.checkpoints.update(moved)
        for reduction in reductions.values():
            report.backfilled[reduction.binding.collection] = len(batches[reduction.binding.index])
            report.count(reduction.binding.collection, "c", len(batches[reduction.binding.index]))
        logger.info("derived %s afresh as of %s", ", ".join(d.spec.name for d in derivations), lsn_to_str(lsn))

    # checks and setup ------------------------------------------------------------------------------------
    def _use_schema(self, cursor: Any) -> None:
        use_schema(cursor, self.plan.database, self.plan.schema)

    def _setup_tables(self, cursor: Any) -> list[TableBinding]:
        """Create tables; bindings whose existing table gained columns must be backfilled again."""
        self.materializer.setup(cursor)
        return [b for b in self.bindings if self.materializer.ensure_table(cursor, b)]

    def _stored_checkpoints(self, cursor: Any) -> dict[TableBinding, int]:
        stored = self.materializer.checkpoints(cursor)
        return {b: stored[b.table] for b in self.bindings if b.table in stored}

    def _check_slot(self) -> None:
        position = self.capture.slot_position()
        tracked = self._floor(None)
        if position is None:
            if tracked is not None:
                raise DataPlaneError(
                    f"replication slot {self.plan.slot!r} of {self.plan.capture} no longer exists, but the warehouse "
                    f"holds its data up to LSN {lsn_to_str(tracked)}: changes since then cannot be read any more. "
                    f"Nothing was written. Run `sophia-flow reset {self.plan.capture}` to backfill every binding again."
                )
            self.capture.create_slot()
        elif tracked is not None and position > tracked:
            raise DataPlaneError(
                f"replication slot {self.plan.slot!r} was advanced to {lsn_to_str(position)} beyond the warehouse "
                f"checkpoint {lsn_to_str(tracked)} by someone else: changes in between were skipped. Nothing was "
                f"written. Run `sophia-flow reset {self.plan.capture}` to backfill every binding again."
            )

    def _changed_shapes(self) -> list[TableBinding]:
        """Bindings whose source table now has columns their warehouse table lacks (re-plan and backfill them)."""
        stale = []
        for binding in self.bindings:
            relation = self.capture.shape(self.plan.sources[binding.index])
            known = {c.name for c in binding.columns} | binding.excluded
            if relation is not None and any(c.name not in known for c in relation.columns):
                stale.append(self._replan(binding))
        return stale

    def _replan(self, binding: TableBinding) -> TableBinding:
        source = self.capture.tables[self.plan.sources[binding.index]]
        known = {c.name for c in binding.columns} | binding.excluded
        added = [Column(name, kind) for name, kind in source_columns(self.capture.conn, source) if name not in known]
        updated = replace(binding, columns=(*binding.columns, *added))
        self.materializer.bindings[binding.index] = updated
        return updated

    def reset(self) -> None:
        """Forget checkpoints and drop the slot: the next run backfills everything from a new snapshot."""
        with self.state.runner_lock(self.plan.capture) as owned:
            if not owned:
                raise DataPlaneError(f"{self.plan.capture} is running in another process; stop it before a reset")
            with data_plane_connection(self.snowflake) as conn:
                cursor = conn.cursor()
                self._use_schema(cursor)
                self.materializer.setup(cursor)
                self.materializer.reset(cursor)
            self.capture.drop_slot()

    # coordination ----------------------------------------------------------------------------------------
    def _await(self, wait_seconds: float) -> RunReport:
        """Another process runs this capture: wait until the warehouse checkpoints pass the source's LSN now."""
        target = self.capture.current_lsn()
        deadline = time.monotonic() + wait_seconds
        with data_plane_connection(self.snowflake) as conn:
            cursor = conn.cursor()
            cursor.execute(f"USE SCHEMA {self.plan.database}.{self.plan.schema}")
            while True:
                reached = min(self._stored_checkpoints(cursor).values(), default=0)
                if reached >= target:
                    self.checkpoints = {b.table: lsn for b, lsn in self._stored_checkpoints(cursor).items()}
                    report = RunReport(lsn=reached, source_lsn=self.capture.current_lsn(), ran_here=False)
                    return self._positioned(report)
                if time.monotonic() > deadline:
                    raise DataPlaneError(
                        f"{self.plan.capture} runs in another process and did not reach LSN {lsn_to_str(target)} "
                        f"within {wait_seconds:.0f}s (it is at {lsn_to_str(reached)})"
                    )
                time.sleep(0.2)

    def _record_stats(self, per_collection: dict[str, tuple[int, int]], flush: bool = False) -> None:
        """Count what moved per collection (written by the capture, read by the materialization) and the position
        reached, so ``status`` reflects a continuous run while it streams: written at most once a second (a
        state-file write per commit would add to every commit's latency), and when ``flush`` is set."""
        for collection, (docs, size) in per_collection.items():
            pending = self._pending_stats.get(collection, (0, 0))
            self._pending_stats[collection] = (pending[0] + docs, pending[1] + size)
        if not flush and time.monotonic() - self._progress_recorded <= 1.0:
            return
        if self._pending_stats:
            self.state.add_stats(self.plan.capture, self._pending_stats, written=True)
            if self.plan.materialization:
                self.state.add_stats(self.plan.materialization, self._pending_stats, written=False)
            self._pending_stats = {}
        if self.checkpoints:
            self.state.record_run(list(self.plan.tasks), None, min(self.checkpoints.values()))
        self._progress_recorded = time.monotonic()


def _now() -> str:
    return datetime.now(UTC).isoformat()
