"""`make stop`: stop the embedded PostgreSQL and warehouse servers of the state directory.

Both start on first use (the demo, `make ui`, a run, `sophia-flow`) and outlive the process that
started them so that every process shares them; this is how they end.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sophia_dagster.config import ConfigError, get_settings
from sophia_dagster.embedded.postgres import stop_embedded_postgres
from sophia_dagster.warehouse.embedded import stop_embedded_warehouse


def stop_servers(state_dir: Path) -> list[str]:
    """Stop both embedded servers under `state_dir`; one line per server saying what happened.

    Example:
        >>> stop_servers(Path(".sophia"))  # doctest: +SKIP
        ['embedded PostgreSQL (.sophia/postgres): stopped', 'embedded warehouse (.sophia/warehouse): not running']
    """
    stopped = {
        f"embedded PostgreSQL ({state_dir / 'postgres'})": stop_embedded_postgres(state_dir),
        f"embedded warehouse ({state_dir / 'warehouse'})": stop_embedded_warehouse(state_dir),
    }
    return [f"{name}: {'stopped' if done else 'not running'}" for name, done in stopped.items()]


def main() -> int:
    """Print what was stopped; exit 2 with one line on a configuration error."""
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(stop_servers(settings.state_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
