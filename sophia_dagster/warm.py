"""Imported once by the forkserver that run steps fork from (see `defs/executor.py`).

Building the definitions, their repository and its jobs here, and opening the instance once, imports
everything a step needs (the code location, the instance's storage) and leaves the built code location
in memory, so each forked step starts warm instead of loading it all again. The modules behind the
shell commands are imported too: a step re-runs the main script of the process that launched it
(multiprocessing's way of giving it the parent's `__main__`), which is then a look-up instead of
importing Dagster's CLI.

What is built is then frozen out of the garbage collector's reach: a full collection in a forked step
would otherwise walk the whole inherited heap, touching (and so copying) every page of it, for about a
second per step.
"""

import gc
import importlib
import os
from importlib.metadata import entry_points

import dagster as dg

from sophia_dagster.definitions import defs

SHELL_COMMANDS = ("dagster", "dg")


def _import_shell_commands() -> None:
    """Import the modules behind the shell commands a run is launched from."""
    for command in entry_points(group="console_scripts"):
        if command.name in SHELL_COMMANDS:
            importlib.import_module(command.module)


defs().get_repository_def().get_all_jobs()
if os.environ.get("DAGSTER_HOME"):
    with dg.DagsterInstance.get():
        pass
_import_shell_commands()
gc.freeze()
