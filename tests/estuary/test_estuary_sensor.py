"""The activity sensor against the fake: batched reads, asset events for new activity, check runs on trouble."""

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from sophia_dagster.estuary.assets import build_estuary_assets
from sophia_dagster.estuary.catalog import load_catalog
from sophia_dagster.estuary.checks import CHECK_NAME, build_estuary_checks
from sophia_dagster.estuary.resource import EstuaryWorkspace
from sophia_dagster.estuary.sensors import ActivityCursor, SensorPlan, build_estuary_sensor, run_tick
from sophia_dagster.estuary.translator import DagsterEstuaryTranslator
from tests.fakes.estuary_server import FakeEstuary

PG, SNOW, HUB = "sophia/postgres-cdc", "sophia/snowflake", "sophia/hubspot"
DEALS = dg.AssetKey(["estuary", "sophia", "postgres-cdc", "deals"])
RAW_DEALS = dg.AssetKey(["snowflake", "sophia", "raw", "deals"])


@pytest.fixture
def published(fake: FakeEstuary, workspace: EstuaryWorkspace) -> EstuaryWorkspace:
    workspace.publish()
    fake.requests.clear()
    return workspace


def tick(workspace: EstuaryWorkspace, cursor: str | None = None) -> Any:
    """One evaluation the way the daemon runs it."""
    sensor = build_estuary_sensor(load_catalog())
    with dg.build_sensor_context(resources={"estuary": workspace}, cursor=cursor) as context:
        return sensor.evaluate_tick(context)


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def events_by_key(result: Any) -> dict[dg.AssetKey, int]:
    return {e.asset_key: e.metadata["estuary/docs"].value for e in result.asset_events}


def test_first_tick_reports_what_estuary_wrote_this_hour(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    fake.add_stats(PG, this_hour(), bindings={f"{PG}/deals": (5, 5000)}, docs_written_by_me=5)
    fake.add_stats(SNOW, this_hour(), bindings={f"{PG}/deals": (5, 4000)}, docs_read_by_me=5)
    result = tick(published)
    assert events_by_key(result) == {DEALS: 5, RAW_DEALS: 5}
    raw = next(e for e in result.asset_events if e.asset_key == RAW_DEALS)
    assert raw.metadata["estuary/bytes"].value == 4000 and raw.metadata["estuary/task"].value == SNOW
    assert result.run_requests == []
    assert fake.count("GET", "/catalog/status") == 1 and fake.count("GET", "/catalog_stats_hourly") == 1


def test_later_ticks_report_only_new_documents(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    fake.add_stats(PG, this_hour(), bindings={f"{PG}/deals": (5, 500), f"{PG}/calls": (2, 200)})
    first = tick(published)
    second = tick(published, first.cursor)
    assert second.asset_events == []
    fake.add_stats(PG, this_hour(), bindings={f"{PG}/deals": (3, 300)})
    third = tick(published, second.cursor)
    assert events_by_key(third) == {DEALS: 3}
    assert third.asset_events[0].metadata["estuary/bytes"].value == 300


def test_a_new_hour_bucket_starts_from_zero(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    plan = SensorPlan.build(load_catalog(), DagsterEstuaryTranslator())
    previous = this_hour() - timedelta(hours=1)
    fake.add_stats(PG, previous, bindings={f"{PG}/deals": (4, 40)})
    first = run_tick(published, plan, ActivityCursor(), now=previous + timedelta(minutes=30))
    assert events_by_key(first) == {DEALS: 4}
    fake.add_stats(PG, previous, bindings={f"{PG}/deals": (1, 10)})  # written in the last minutes of the old hour
    fake.add_stats(PG, this_hour(), bindings={f"{PG}/deals": (6, 60)})
    second = run_tick(published, plan, ActivityCursor.parse(first.cursor), now=datetime.now(UTC))
    (event,) = second.asset_events
    assert (event.metadata["estuary/docs"].value, event.metadata["estuary/bytes"].value) == (7, 70)
    assert event.metadata["estuary/stats_hour"].value == this_hour().isoformat()
    assert ActivityCursor.parse(second.cursor).counters[PG][-1][0] == int(this_hour().timestamp() // 3600)


def test_late_documents_of_an_older_hour_never_show_as_the_latest_activity(
    fake: FakeEstuary, published: EstuaryWorkspace
) -> None:
    plan = SensorPlan.build(load_catalog(), DagsterEstuaryTranslator())
    previous = this_hour() - timedelta(hours=1)
    fake.add_stats(PG, previous, bindings={f"{PG}/deals": (4, 40)})
    fake.add_stats(PG, this_hour(), bindings={f"{PG}/deals": (6, 60)})
    first = run_tick(published, plan, ActivityCursor(), now=datetime.now(UTC))
    (event,) = first.asset_events
    assert event.metadata["estuary/docs"].value == 6
    assert event.metadata["estuary/stats_hour"].value == this_hour().isoformat()
    fake.add_stats(PG, previous, bindings={f"{PG}/deals": (2, 20)})  # Estuary counted these late
    second = run_tick(published, plan, ActivityCursor.parse(first.cursor), now=datetime.now(UTC))
    (late,) = second.asset_events  # the previous hour, read again: 4 + 2 documents not reported yet
    assert late.metadata["estuary/docs"].value == 6
    assert late.metadata["estuary/stats_hour"].value == this_hour().isoformat()
    assert run_tick(published, plan, ActivityCursor.parse(second.cursor), now=datetime.now(UTC)).asset_events == []


def test_documents_counted_late_into_an_ended_hour_are_still_reported(
    fake: FakeEstuary, published: EstuaryWorkspace
) -> None:
    plan = SensorPlan.build(load_catalog(), DagsterEstuaryTranslator())
    previous = this_hour() - timedelta(hours=1)
    fake.add_stats(PG, previous, bindings={f"{PG}/deals": (4, 40)})
    first = run_tick(published, plan, ActivityCursor(), now=previous + timedelta(minutes=59))
    second = run_tick(published, plan, ActivityCursor.parse(first.cursor), now=this_hour() + timedelta(minutes=1))
    assert second.asset_events == []
    fake.add_stats(PG, previous, bindings={f"{PG}/deals": (2, 20)})  # the old hour's rollup arrives late
    third = run_tick(published, plan, ActivityCursor.parse(second.cursor), now=this_hour() + timedelta(minutes=2))
    assert [(e.metadata["estuary/docs"].value, e.metadata["estuary/stats_hour"].value) for e in third.asset_events] == [
        (2, previous.isoformat())
    ]


def test_a_changed_catalog_layout_resets_the_counters(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    fake.add_stats(PG, this_hour(), bindings={f"{PG}/deals": (5, 50)})
    cursor = ActivityCursor.parse(tick(published).cursor)
    assert events_by_key(tick(published, cursor.model_dump_json())) == {}
    stale = cursor.model_copy(update={"plan": "another-layout"})
    assert events_by_key(tick(published, stale.model_dump_json())) == {DEALS: 5}


def test_a_task_turning_unhealthy_requests_its_checks_once(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    fake.set_status(HUB, "warning", "rate limited by HubSpot")
    first = tick(published)
    (request,) = first.run_requests
    assert set(request.asset_check_keys) == {
        dg.AssetCheckKey(dg.AssetKey(["estuary", *f"{HUB}/{o}".split("/")]), CHECK_NAME)
        for o in ("contacts", "companies", "deals", "engagements")
    }
    assert request.tags["estuary/task"] == HUB and request.asset_selection == []
    assert tick(published, first.cursor).run_requests == []
    fake.set_status(HUB, "error", "authentication failed")
    escalated = tick(published, first.cursor)
    assert [r.tags["estuary/status"] for r in escalated.run_requests] == ["error"]
    del fake.status_override[HUB]
    recovered = tick(published, escalated.cursor)
    assert recovered.run_requests == [] and ActivityCursor.parse(recovered.cursor).unhealthy == {}


def test_unreadable_cursor_starts_afresh(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    fake.add_stats(PG, this_hour(), bindings={f"{PG}/deals": (2, 20)})
    assert events_by_key(tick(published, "not json")) == {DEALS: 2}


def test_requests_per_tick_scale_with_ceil_n_over_100(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    names = [f"acme/t{i:04d}" for i in range(250)]
    for name in names:
        fake.add_live(name, "capture", {"endpoint": {}, "bindings": []})
        fake.add_stats(name, this_hour(), bindings={f"{name}/c": (1, 1)})
    plan = SensorPlan(
        tasks=names, keys={n: {f"{n}/c": [dg.AssetKey(n.split("/"))]} for n in names}, checks={n: [] for n in names}
    )
    result = run_tick(published, plan, ActivityCursor(), datetime.now(UTC))
    assert len(result.asset_events) == 250
    assert fake.count("GET", "/catalog/status") == math.ceil(250 / 100)
    assert fake.count("GET", "/catalog_stats_hourly") == math.ceil(250 / 100)


def test_the_requested_checks_run_and_report_estuarys_status(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    fake.set_status(HUB, "error", "authentication failed")
    catalog, translator = load_catalog(), DagsterEstuaryTranslator()
    (request,) = tick(published).run_requests
    result = dg.materialize(
        [
            *[a for a in build_estuary_assets(catalog, translator) if isinstance(a, dg.AssetsDefinition)],
            *build_estuary_checks(catalog, translator),
        ],
        selection=dg.AssetSelection.checks(*request.asset_check_keys),
        resources={"estuary": published},
        raise_on_error=False,
    )
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 4 and not any(e.passed for e in evaluations)
    assert {e.metadata["estuary/message"].value for e in evaluations} == {"authentication failed"}
    assert result.get_asset_materialization_events() == []


def test_tasks_not_yet_published_do_not_break_the_tick(fake: FakeEstuary, published: EstuaryWorkspace) -> None:
    del fake.live[HUB]  # in the catalog, not (yet) in Estuary: the agent API answers 404 for any batch holding it
    fake.set_status(SNOW, "error", "warehouse unreachable")
    fake.add_stats(PG, this_hour(), bindings={f"{PG}/deals": (2, 20)})
    result = tick(published)
    assert events_by_key(result) == {DEALS: 2}
    assert [r.tags["estuary/task"] for r in result.run_requests] == [SNOW]
    assert fake.count("GET", "/catalog/status") <= 5
