"""Errors of the embedded data plane, all under the integration's :class:`EstuaryError` (one way: the data plane
imports the integration, never the reverse)."""

from sophia_dagster.estuary.errors import EstuaryError


class DataPlaneError(EstuaryError):
    """The data plane refused or stopped a task (rather than lose or duplicate data); the message says why and what
    to do."""


class CaptureError(DataPlaneError):
    """The source cannot be captured as configured; the message says which table or slot and why."""


class DecodeError(DataPlaneError):
    """The bytes are not a pgoutput v1 message this decoder understands."""


class NotRunnableHereError(DataPlaneError):
    """A catalog task the embedded data plane cannot run (the message says why)."""
