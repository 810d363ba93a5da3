"""The code location's entry point: everything under `sophia_dagster/defs/`, loaded the 1.13 way."""

import gc
from functools import cache
from pathlib import Path

import dagster as dg


@cache
def _load() -> dg.Definitions:
    """Built once per process; run steps fork from a process that already built it (see `defs/executor.py`).

    The garbage collector is paused meanwhile: building imports hundreds of thousands of long-lived
    objects (dagster-snowflake's dependencies above all) that every full collection would walk again,
    which costs about a quarter of the build. What the build leaves as garbage goes at the next collection.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        from sophia_dagster.defs.governance import with_governance

        return with_governance(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
    finally:
        if collecting:
            gc.enable()


@dg.definitions
def defs() -> dg.Definitions:
    """Every asset, check, job, schedule, sensor and resource of the platform."""
    return _load()
