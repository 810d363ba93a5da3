"""How a run executes its steps: each in its own process, forked from a server that has the code location loaded.

Dagster's default spawns a fresh interpreter per step, which imports the whole code location again
(seconds, mostly dagster-snowflake's own imports); forking from a warm forkserver makes that a fraction
of a second, so a local "materialize all" is not dominated by imports. The import is then paid once per
run: Dagster starts the forkserver at the run's first step, and it loads the code location before that
step forks (see `sophia_dagster/warm.py`).
"""

import dagster as dg

WARM_MODULE = "sophia_dagster.warm"

warm_multiprocess_executor = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": [WARM_MODULE]}}},
    name="warm_multiprocess",
)


@dg.definitions
def executor() -> dg.Definitions:
    """The executor of every job of the code location, including the asset jobs the UI and the CLIs launch."""
    return dg.Definitions(executor=warm_multiprocess_executor)
