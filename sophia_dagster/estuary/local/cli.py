"""``sophia-flow``: run the embedded data plane from a shell.

sophia-flow run [TASK]            stream continuously (Ctrl-C or ``pause`` stops it)
sophia-flow run --once [TASK]     run until caught up with the source, print what moved
sophia-flow status|stats [TASK...]
sophia-flow publish|pause|resume|reset TASK
sophia-flow demo [--changes N]    seed -> backfill -> burst of live changes -> caught up, with counts
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta

from sophia_dagster.config import ConfigError
from sophia_dagster.embedded.demo import SOURCE_SETUP
from sophia_dagster.estuary.catalog import PLATFORM_CATALOG_DIR, CatalogError
from sophia_dagster.estuary.errors import EstuaryError
from sophia_dagster.estuary.local.capture import CaptureError
from sophia_dagster.estuary.local.demo import run_demo
from sophia_dagster.estuary.local.hubspot import HubSpotError
from sophia_dagster.estuary.local.pgoutput import lsn_to_str
from sophia_dagster.estuary.local.pipeline import DataPlaneError, RunReport
from sophia_dagster.estuary.local.progress import LiveStatus
from sophia_dagster.estuary.local.resource import LocalDataPlane

DEFAULT_TASK = "sophia/postgres-cdc"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sophia-flow", description="Run the Flow catalog in the embedded data plane.")
    parser.add_argument("--state-dir", default=None, help="state directory (default: STATE_DIR setting, ./.sophia)")
    parser.add_argument("--catalog", default=str(PLATFORM_CATALOG_DIR), help="flow.yaml file or directory")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="stream changes (continuously unless --once)")
    run.add_argument("task", nargs="?", default=DEFAULT_TASK)
    run.add_argument("--once", action="store_true", help="stop once caught up with the source's current LSN")
    run.add_argument("--poll-seconds", type=float, default=0.05)
    for name in ("status", "stats"):
        commands.add_parser(name).add_argument("tasks", nargs="*")
    for name in ("publish", "pause", "resume", "reset"):
        commands.add_parser(name).add_argument("task")
    commands.add_parser("demo", help="the real flow on the demo schema").add_argument(
        "--changes", type=int, default=2_000
    )
    return parser


def _plane(args: argparse.Namespace) -> LocalDataPlane:
    if args.state_dir is None:
        from sophia_dagster.config import get_settings

        settings = get_settings()
        dsn = settings.postgres_dsn.get_secret_value() if settings.postgres_dsn else None
        return LocalDataPlane(
            state_dir=str(settings.state_dir),
            postgres_dsn=dsn,
            catalog_path=args.catalog,
            embedded_source_setup=SOURCE_SETUP,
            hubspot_api_url=settings.hubspot_api_url,
        )
    return LocalDataPlane(state_dir=args.state_dir, catalog_path=args.catalog, embedded_source_setup=SOURCE_SETUP)


def _run(plane: LocalDataPlane, args: argparse.Namespace) -> dict:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    live = RunReport()
    with LiveStatus(live):
        report = plane.run(args.task, until_caught_up=args.once, stop=stop, poll_seconds=args.poll_seconds, report=live)
    return {
        "task": args.task,
        "lsn": lsn_to_str(report.lsn),
        "lag_bytes": report.lag_bytes,
        "duration_seconds": round(report.duration_seconds, 3),
        "backfilled": report.backfilled,
        "rows": {collection: dict(counts) for collection, counts in report.counts.items()},
    }


def _command(plane: LocalDataPlane, args: argparse.Namespace) -> object:
    if args.command == "run":
        return _run(plane, args)
    if args.command == "demo":
        return run_demo(plane, args.changes, say=lambda line: print(line, file=sys.stderr))
    if args.command == "status":
        names = args.tasks or list(plane.load_catalog().tasks)
        return [status.model_dump() for status in plane.status(names)]
    if args.command == "stats":
        names = args.tasks or list(plane.load_catalog().tasks)
        since = datetime.now(UTC) - timedelta(days=1)
        return [row.model_dump(mode="json") for row in plane.stats(names, since)]
    if args.command == "reset":
        pipeline = plane.pipeline(args.task)
        try:
            pipeline.reset()
        finally:
            pipeline.close()
        return {"reset": args.task, "next_run": "backfills every binding from a new snapshot"}
    return getattr(plane, args.command)(args.task).model_dump()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sophia-flow``; prints JSON, returns a non-zero status with one line on failure.

    Run as the command (no ``argv``), the process ends as soon as its answer is written: every connection is
    closed by then, and tearing down the loaded libraries would delay a stop by seconds.
    """
    code = _main(_parser().parse_args(argv))
    if argv is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(args: argparse.Namespace) -> int:
    try:
        result = _command(_plane(args), args)
    except ConfigError as exc:
        print(f"sophia-flow: {exc}", file=sys.stderr)
        return 2
    except (EstuaryError, CatalogError, DataPlaneError, CaptureError, HubSpotError) as exc:
        print(f"sophia-flow: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
