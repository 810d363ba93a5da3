"""The Estuary activity sensor: shows what Estuary wrote, and checks tasks that turn unhealthy.

Every tick reads the status and the hourly stats of all tasks in batches (100 names per request, so
``ceil(N/100)`` requests each), then

- emits an AssetMaterialization for each collection and warehouse table Estuary wrote since the last
  tick, with the documents and bytes moved (per binding, from the stats document), and
- requests a run of a task's health checks when the task turns ``warning`` or ``error``.

The cursor holds the last tick time, the per-binding counters of each task's current stats bucket
(to compute what is new within an hour) and the tasks currently unhealthy.

A stats row is per hour, so the cursor compares each binding's counters in a bucket with what the
last tick saw of that bucket; a new hour starts from zero. The previous hour is read again on every
tick, so documents Estuary counts late into an hour that has ended are still reported: added to the tick's
event for the binding, which is stamped with the newest hour, so an asset's latest event is never older than
one already reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import BaseModel, Field, ValidationError

from sophia_dagster.estuary.catalog import Catalog
from sophia_dagster.estuary.checks import task_check_keys
from sophia_dagster.estuary.errors import EstuaryAPIError
from sophia_dagster.estuary.models import BindingStats, TaskStats, TaskStatus
from sophia_dagster.estuary.resource import RESOURCE_KEY, EstuaryRuntime
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator, task_bindings

UNHEALTHY = frozenset({"warning", "error"})
log = logging.getLogger(__name__)


class ActivityCursor(BaseModel):
    """What the sensor remembers between ticks, kept compact (Dagster stores it with every tick).

    ``counters[task]`` holds the task's last two buckets, each ``[hour since the epoch, docs, bytes, docs,
    bytes, ...]`` with one pair per collection in the plan's order; ``plan`` fingerprints that order, so a
    changed catalog starts afresh.
    """

    last_tick: datetime | None = None
    plan: str = ""
    counters: dict[str, list[list[int]]] = Field(default_factory=dict)
    unhealthy: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> ActivityCursor:
        """Read a cursor; an empty or unreadable one starts afresh."""
        try:
            return cls.model_validate_json(text) if text else cls()
        except ValidationError:
            return cls()


class SensorPlan(BaseModel):
    """Precomputed lookups: which asset keys a task's binding stats map to, and the task's check keys."""

    model_config = {"arbitrary_types_allowed": True}

    tasks: list[str]
    keys: dict[str, dict[str, list[dg.AssetKey]]]
    checks: dict[str, list[dg.AssetCheckKey]]

    @classmethod
    def build(cls, catalog: Catalog, translator: DagsterEstuaryTranslator) -> SensorPlan:
        """Map every (task, collection) to the asset keys its stats describe."""
        keys: dict[str, dict[str, list[dg.AssetKey]]] = {}
        for task in catalog.tasks:
            specs = translator.get_task_specs(catalog, task)
            per_collection = keys.setdefault(task, {})
            for spec, binding in zip(specs, task_bindings(catalog, task), strict=True):
                per_collection.setdefault(binding.collection, []).append(spec.key)
        checks = {task: task_check_keys(catalog, task, translator) for task in catalog.tasks}
        return cls(tasks=list(catalog.tasks), keys=keys, checks=checks)

    @property
    def fingerprint(self) -> str:
        """Identifies the task -> collection order the cursor's counters follow."""
        layout = json.dumps({task: list(collections) for task, collections in self.keys.items()}, sort_keys=True)
        return hashlib.sha256(layout.encode()).hexdigest()[:16]


def activity_events(
    rows: Iterable[TaskStats], cursor: ActivityCursor, plan: SensorPlan
) -> tuple[list[dg.AssetMaterialization], dict[str, list[int]]]:
    """One materialization per binding that moved since the cursor, and the counters to remember.

    What moved in every bucket read (documents counted late into the previous hour included) is summed
    into one event stamped with the newest hour involved, never older than an hour already reported: the
    latest materialization an asset shows is always the newest activity.
    """
    counters = dict(cursor.counters) if cursor.plan == plan.fingerprint else {}
    moved: dict[tuple[str, str], list[int]] = {}
    newest: dict[str, int] = {task: max(b[0] for b in buckets) for task, buckets in counters.items() if buckets}
    for row in sorted(rows, key=lambda r: (r.catalog_name, r.ts)):
        collections = plan.keys.get(row.catalog_name, {})
        hour = int(row.ts.timestamp() // 3600)
        buckets = {bucket[0]: bucket[1:] for bucket in counters.get(row.catalog_name, [])}
        seen = buckets.get(hour, [0] * (2 * len(collections)))
        current: list[int] = []
        for index, collection in enumerate(collections):
            now = row.bindings.get(collection, BindingStats())
            docs, size = now.docs - seen[2 * index], now.bytes - seen[2 * index + 1]
            if docs > 0:
                total = moved.setdefault((row.catalog_name, collection), [0, 0, hour])
                total[0], total[1], total[2] = total[0] + docs, total[1] + size, max(total[2], hour)
            current += [now.docs, now.bytes]
        buckets[hour] = current
        newest[row.catalog_name] = max(newest.get(row.catalog_name, hour), hour)
        counters[row.catalog_name] = [[bucket, *seen] for bucket, seen in sorted(buckets.items())[-2:]]
    events = [
        _materialization(key, task, collection, docs, size, max(hour, newest.get(task, hour)))
        for (task, collection), (docs, size, hour) in moved.items()
        for key in plan.keys[task][collection]
    ]
    return events, counters


def _materialization(
    key: dg.AssetKey, task: str, collection: str, docs: int, size: int, hour: int
) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key=key,
        description=f"Estuary task {task} moved {docs} documents of {collection}",
        metadata={
            "estuary/task": task,
            "estuary/collection": collection,
            "estuary/docs": dg.MetadataValue.int(docs),
            "estuary/bytes": dg.MetadataValue.int(size),
            "estuary/stats_hour": datetime.fromtimestamp(hour * 3600, UTC).isoformat(),
        },
    )


def health_requests(
    statuses: Sequence[TaskStatus], cursor: ActivityCursor, plan: SensorPlan, now: datetime
) -> tuple[list[dg.RunRequest], dict[str, str]]:
    """A run of a task's checks for each task that turned warning/error since the last tick."""
    unhealthy = {s.catalog_name: s.status for s in statuses if s.status in UNHEALTHY}
    requests = [
        dg.RunRequest(
            run_key=f"estuary-health:{task}:{status}:{now.isoformat()}",
            asset_selection=[],
            asset_check_keys=plan.checks[task],
            tags={"estuary/task": task, "estuary/status": status},
        )
        for task, status in unhealthy.items()
        if cursor.unhealthy.get(task) != status and plan.checks.get(task)
    ]
    return requests, unhealthy


def published_statuses(runtime: EstuaryRuntime, names: Sequence[str]) -> list[TaskStatus]:
    """Status of the named tasks that exist in Estuary.

    The agent API answers 404 to a whole request when one name is unknown (a task in the catalog but
    not yet published); the names are then bisected so the known ones are still read.
    """
    try:
        return runtime.status(names)
    except EstuaryAPIError as exc:
        if exc.status != 404:
            raise
        if len(names) == 1:
            log.warning("Estuary has no task %s yet; publish it to monitor it", names[0])
            return []
    middle = len(names) // 2
    return published_statuses(runtime, names[:middle]) + published_statuses(runtime, names[middle:])


def run_tick(runtime: EstuaryRuntime, plan: SensorPlan, cursor: ActivityCursor, now: datetime) -> dg.SensorResult:
    """One sensor evaluation: batched status + stats reads, asset events, check runs, new cursor."""
    statuses = published_statuses(runtime, plan.tasks)
    since = cursor.last_tick - timedelta(hours=1) if cursor.last_tick else now
    rows = runtime.stats(plan.tasks, since=since)
    events, counters = activity_events(rows, cursor, plan)
    requests, unhealthy = health_requests(statuses, cursor, plan, now)
    new_cursor = ActivityCursor(last_tick=now, plan=plan.fingerprint, counters=counters, unhealthy=unhealthy)
    return dg.SensorResult(asset_events=events, run_requests=requests, cursor=new_cursor.model_dump_json())


def build_estuary_sensor(
    catalog: Catalog,
    translator: DagsterEstuaryTranslator | None = None,
    *,
    name: str = "estuary_activity_sensor",
    minimum_interval_seconds: int = 60,
    resource_key: str = RESOURCE_KEY,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """The activity sensor over every task of ``catalog``; its target is the tasks' health checks."""
    plan = SensorPlan.build(catalog, translator or DagsterEstuaryTranslator())
    check_keys = [key for keys in plan.checks.values() for key in keys]

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        required_resource_keys={resource_key},
        target=dg.AssetSelection.checks(*check_keys),
        default_status=default_status,
        description="Reads Estuary status and stats in batches; reports what Estuary wrote and checks unhealthy tasks.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        runtime: EstuaryRuntime = getattr(context.resources, resource_key)
        return run_tick(runtime, plan, ActivityCursor.parse(context.cursor), datetime.now(UTC))

    return _sensor
