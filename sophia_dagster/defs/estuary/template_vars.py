"""Template variables of this folder's ``defs.yaml``: what the platform's environment decides about the graph."""

import dagster as dg

from sophia_dagster.config import get_settings
from sophia_dagster.defs.resources import estuary_runs_in_process


@dg.template_var
def runs_captures_in_process() -> bool:
    """Whether the `estuary` runtime bound for ENVIRONMENT runs the captures in this process (the embedded data plane
    in local): then a materialization gets one op per feeding capture, so HubSpot without its token holds back only
    its own tables; against Estuary it stays one op (one publication per run)."""
    return estuary_runs_in_process(get_settings())
