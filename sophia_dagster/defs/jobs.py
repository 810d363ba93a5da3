"""The platform's jobs."""

import dagster as dg

MAIN_JOB = "sophia_main"

sophia_main = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.all(),
    description="Materialize every asset: Estuary tasks, raw warehouse tables, analytics models, memory tiers.",
)
