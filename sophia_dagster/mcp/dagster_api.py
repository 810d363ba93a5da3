"""The Dagster webserver's GraphQL API, as the asset and health tools use it (dagster-graphql's client)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

ASSET_JOB = "__ASSET_JOB"
ASSETS_QUERY = """
query Assets {
  assetNodes {
    assetKey { path }
    groupName
    isMaterializable
    assetMaterializations(limit: 1) { timestamp runId }
    assetChecksOrError {
      ... on AssetChecks { checks { name blocking executionForLatestMaterialization { status timestamp } } }
    }
  }
}
"""
RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId jobName status startTime endTime assetSelection { path } }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey error { message causes { message } } }
        ... on RunFailureEvent { error { message causes { message } } }
      }
    }
  }
}
"""


class DagsterApiError(Exception):
    """The webserver could not be reached or refused a request; the message says which."""


class DagsterApi:
    """Reads assets and runs and launches runs through a Dagster webserver.

    Args:
        url: the web UI's base URL (``http://127.0.0.1:3000``); GraphQL is at ``<url>/graphql``.
        timeout_seconds: how long one request may take.
    """

    def __init__(self, url: str, timeout_seconds: int = 60) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DagsterApiError(f"DAGSTER_UI_URL {url!r} is not an http(s) URL")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._client = DagsterGraphQLClient(
            parts.hostname,
            port_number=parts.port,
            use_https=parts.scheme == "https",
            timeout=timeout_seconds,
            path_prefix=parts.path.rstrip("/"),
        )

    def _query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return self._client._execute(query, variables)
        except DagsterGraphQLClientError as exc:
            raise DagsterApiError(f"the Dagster webserver at {self.url} did not answer ({_first_line(exc)})") from None

    def assets(self) -> list[dict[str, Any]]:
        """Every asset node with its latest materialization and the latest result of each check."""
        return self._query(ASSETS_QUERY)["assetNodes"]

    def run(self, run_id: str) -> dict[str, Any]:
        """A run's status and the error messages of its failed steps."""
        data = self._query(RUN_QUERY, {"runId": run_id})
        run = data["runOrError"]
        if run["__typename"] != "Run":
            raise DagsterApiError(f"run {run_id!r}: {run.get('message') or run['__typename']}")
        events = (data.get("logsForRun") or {}).get("events") or []
        steps = [_error_line(e.get("stepKey"), e["error"]) for e in events if e.get("stepKey") and e.get("error")]
        runs = [_error_line("run", e["error"]) for e in events if not e.get("stepKey") and e.get("error")]
        errors = steps or runs
        return {**run, "errors": errors}

    def launch(self, asset_paths: list[list[str]], job_name: str = ASSET_JOB) -> str:
        """Launch a run of ``job_name`` over the given assets; returns its run id."""
        try:
            return self._client.submit_job_execution(job_name, asset_selection=asset_paths)
        except DagsterGraphQLClientError as exc:
            raise DagsterApiError(f"the Dagster webserver at {self.url} refused the run: {_first_line(exc)}") from None


def _error_line(where: str, error: dict[str, Any]) -> str:
    """``where: message`` of an error's root cause (Dagster wraps a step's exception in its own)."""
    causes = error.get("causes") or []
    message = (causes[-1] if causes else error)["message"].strip()
    return f"{where}: {message.splitlines()[0] if message else 'failed'}"


def _first_line(exc: BaseException) -> str:
    """The root cause in one line (the client's own message repeats the whole query)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
