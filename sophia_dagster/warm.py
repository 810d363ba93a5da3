"""Imported once by the forkserver that run steps fork from (see `defs/executor.py`).

Building the definitions and their repository here, and opening the instance once, imports everything
a step needs (the code location, the instance's storage) and leaves the built code location in memory,
so each forked step starts warm instead of loading it all again.
"""

import os

import dagster as dg

from sophia_dagster.definitions import defs

defs().get_repository_def()
if os.environ.get("DAGSTER_HOME"):
    with dg.DagsterInstance.get():
        pass
