"""`make demo`: the main job on the embedded engines, a burst of live changes caught up, then where to look."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg

from sophia_dagster.config import PLATFORM_CDC_TASK, ConfigError, get_settings
from sophia_dagster.dataplane.demo import report_counts, source_and_warehouse_counts
from sophia_dagster.defs.jobs import MAIN_JOB
from sophia_dagster.embedded.demo import generate_changes

BURST_CHANGES = 2_000
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _instance(state_dir: Path) -> dg.DagsterInstance:
    """The persistent instance `make ui` opens too, so the demo's runs show in the web UI."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str((state_dir / "dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def _runnable_here(loaded: dg.Definitions) -> list[dg.AssetKey]:
    """Every materializable asset except HubSpot's lineage: it needs HubSpot's API, which is not faked."""
    graph = loaded.resolve_asset_graph()
    everything = dg.AssetSelection.all().resolve(graph)
    saas = dg.AssetSelection.kind("hubspot").downstream().resolve(graph)
    return sorted(everything - saas, key=lambda key: key.to_user_string())


def _run(loaded: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey], label: str) -> None:
    print(f"\n== {label}: materializing {len(keys)} assets")
    result = loaded.resolve_job_def(MAIN_JOB).execute_in_process(
        instance=instance, asset_selection=keys, raise_on_error=False, run_config=QUIET
    )
    for event in result.get_step_failure_events():
        print(f"   FAILED {event.step_key}: {event.event_specific_data.error.message.strip()}")
    done = len(result.get_asset_materialization_events())
    print(f"   {'succeeded' if result.success else 'FAILED'}: {done} materializations (run {result.run_id})")
    if not result.success:
        raise SystemExit(1)


def _psql_line(embedded: bool, dsn: str) -> str:
    """How to reach the embedded source by hand; nothing for a POSTGRES_DSN of the user's (it may hold a password)."""
    if not embedded:
        return ""
    return f"  psql '{dsn}'\n                                the embedded source: change rows by hand, then run again\n"


def main() -> int:
    """Run the demo; exit 0 when the warehouse matches the source after the burst."""
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.environment != "local":
        print(f"error: the demo runs on the embedded engines; ENVIRONMENT is {settings.environment}", file=sys.stderr)
        return 2
    from sophia_dagster.definitions import defs

    loaded = defs()
    instance = _instance(settings.state_dir)
    keys = _runnable_here(loaded)
    resources = {key: loaded.resources[key] for key in ("source_postgres", "estuary")}
    with dg.build_resources(resources) as built:
        source_dsn = built.source_postgres.get_dsn()
        _run(loaded, instance, keys, "seed -> backfill -> models -> memory tiers")
        print(f"\n== a burst of {BURST_CHANGES} live inserts, updates and deletes in the source")
        print(f"   {generate_changes(source_dsn, BURST_CHANGES)}")
        _run(loaded, instance, keys, "catch up")
        print("\n== source PostgreSQL vs warehouse SOPHIA.RAW (live rows)")
        same = report_counts(source_and_warehouse_counts(built.estuary, PLATFORM_CDC_TASK))
    print(
        "\nWhere to look next:\n"
        "  make ui                       the Dagster web UI at http://127.0.0.1:3000, with these two runs\n"
        "  .venv/bin/sophia-config show  the effective settings and where each came from\n"
        "  .venv/bin/sophia-flow run     stream changes continuously (sub-second lag); try it beside make ui\n"
        f"  {str(settings.state_dir) + '/':<29} the embedded PostgreSQL, warehouse and data-plane state\n"
        f"{_psql_line(settings.postgres_dsn is None, source_dsn)}"
        "  make stop                     stop the embedded PostgreSQL and warehouse servers\n"
        "HubSpot assets are left out of the demo: set HUBSPOT_ACCESS_TOKEN to capture HubSpot locally."
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
