"""``python -m sophia_dagster.mcp`` runs ``sophia-mcp``."""

import sys

from sophia_dagster.mcp.cli import main

sys.exit(main())
