"""`sophia-estuary`: the operator's shell commands for the environment's Estuary tasks.

The same runtime the assets use (`defs.resources.ESTUARY_BY_ENVIRONMENT`): Estuary's control plane in
dev/prod, the embedded data plane in local. A catalog change is published with `--dry-run` first, which
builds and validates it in Estuary without activating anything.

    sophia-estuary publish --dry-run [TASK ...]   validate the catalog (all tasks when none is named)
    sophia-estuary publish [TASK ...]             publish it
    sophia-estuary pause TASK | resume TASK       stop / restart a task's shards
    sophia-estuary status [TASK ...]              each task's status
"""

from __future__ import annotations

import argparse
import sys

from sophia_dagster.config import ConfigError, get_settings
from sophia_dagster.defs.resources import ESTUARY_BY_ENVIRONMENT
from sophia_dagster.estuary.errors import EstuaryError
from sophia_dagster.estuary.runtime import EstuaryRuntime


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sophia-estuary", description="Operate the environment's Estuary tasks.")
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser("publish", help="publish tasks with their collections")
    publish.add_argument("--dry-run", action="store_true", help="build and validate only; activate nothing")
    publish.add_argument("tasks", nargs="*")
    for name in ("pause", "resume"):
        commands.add_parser(name).add_argument("task")
    commands.add_parser("status").add_argument("tasks", nargs="*")
    return parser


def _run(runtime: EstuaryRuntime, args: argparse.Namespace) -> list[str]:
    if args.command == "publish":
        result = runtime.publish(args.tasks or None, dry_run=args.dry_run)
        verb = "dry run" if result.dry_run else "published"
        return [f"{verb} {result.pub_id}: {result.status} ({', '.join(result.names)})"]
    if args.command in ("pause", "resume"):
        result = getattr(runtime, args.command)(args.task)
        return [f"{args.command}d {args.task} ({result.pub_id})"]
    names = args.tasks or sorted(runtime.load_catalog().tasks)
    return [
        f"{s.catalog_name}: {s.status}{' (disabled)' if s.disabled else ''} {s.message}".rstrip()
        for s in runtime.status(names)
    ]


def main(argv: list[str] | None = None) -> int:
    """Run one command; a failure prints Estuary's (or the catalog's) message, never a secret, and exits 1."""
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
        with ESTUARY_BY_ENVIRONMENT[settings.environment](settings).process_config_and_initialize_cm() as runtime:
            lines = _run(runtime, args)
    except (ConfigError, EstuaryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
