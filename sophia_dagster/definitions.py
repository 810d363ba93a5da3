"""The code location's entry point: everything under `sophia_dagster/defs/`, loaded the 1.13 way."""

from functools import cache
from pathlib import Path

import dagster as dg


@cache
def _load() -> dg.Definitions:
    """Built once per process; run steps fork from a process that already built it (see `defs/executor.py`)."""
    from sophia_dagster.defs.governance import with_governance

    return with_governance(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))


@dg.definitions
def defs() -> dg.Definitions:
    """Every asset, check, job, schedule, sensor and resource of the platform."""
    return _load()
