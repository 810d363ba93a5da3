"""The environment the embedded servers start with: what a process needs to run, none of the platform's secrets.

Settings export every secret into `os.environ` (resources bind them by name), and a child process inherits
its parent's environment. The embedded PostgreSQL and warehouse servers outlive the process that starts
them (the postmaster even runs as another OS user), so they get only these variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PASSED = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "XDG_RUNTIME_DIR")
PASSED_PREFIXES = ("LC_", "PGSERVER_")


def server_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of this process a server needs (locale, paths), plus `overrides`.

    Example:
        ``subprocess.Popen(command, env=server_environment({"TMPDIR": str(root / "tmp")}))``
    """
    passed = {name: value for name, value in os.environ.items() if name in PASSED or name.startswith(PASSED_PREFIXES)}
    return {**passed, **(overrides or {})}
