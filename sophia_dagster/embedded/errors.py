"""The error an embedded engine raises when its server cannot be started."""

from __future__ import annotations


class EmbeddedServerError(ConnectionError):
    """An embedded server (PostgreSQL, warehouse) did not start; the message names its directory and log.

    A `ConnectionError`, so callers that degrade when a backend is unreachable treat it the same way.
    """
