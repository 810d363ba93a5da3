"""The code location's entry point: everything under `sophia_dagster/defs/`, loaded the 1.13 way."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Every asset, check, job, schedule, sensor and resource of the platform."""
    from sophia_dagster.defs.governance import with_governance

    return with_governance(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
