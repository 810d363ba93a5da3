"""The startup report: is every service of the environment reachable, how fast, and what degrades if not.

`check_environment(settings)` probes PostgreSQL, Redis, the warehouse, Estuary, Pulumi ESC and the alert
webhook at once (each with its own timeout) and returns a `Report`; `sophia-doctor` prints it as one
table and exits 0 when the environment can run, 1 when a service it needs is down, 2 when the
configuration itself is unusable. Nothing secret is printed: a service is named by its host, and every
message passes through a redactor that knows each secret of the settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import redis
from psycopg.conninfo import conninfo_to_dict

from sophia_dagster.config import SECRET_FIELDS, ConfigError, Settings, load_settings
from sophia_dagster.embedded.postgres import ensure_embedded_postgres
from sophia_dagster.esc import open_esc_environment
from sophia_dagster.estuary.client import EstuaryClient
from sophia_dagster.estuary.http import RetryPolicy
from sophia_dagster.warehouse.resources import snowflake_resource

OK, DOWN, OFF = "ok", "DOWN", "off"
EXIT_CAN_RUN, EXIT_CANNOT_RUN, EXIT_BAD_CONFIG = 0, 1, 2
DOCTOR_PROBE_NAME = "sophia-doctor/probe"
"""A catalog name no task has: reading its live spec is a real, authenticated round trip that changes nothing."""


@dataclass(frozen=True)
class Check:
    """One service: whether it answered, in how long, and what the platform loses while it does not."""

    service: str
    status: str
    latency_ms: float | None
    detail: str
    degrades: str
    required: bool

    @property
    def blocking(self) -> bool:
        """Whether this result stops the environment from running."""
        return self.required and self.status != OK


@dataclass(frozen=True)
class Report:
    """The checks of one environment; `can_run` is what the exit code of `sophia-doctor` says."""

    environment: str
    checks: tuple[Check, ...]

    @property
    def can_run(self) -> bool:
        """True unless a service the environment needs is down."""
        return not any(check.blocking for check in self.checks)

    def render(self) -> str:
        """The report as a plain-text table and a verdict line."""
        header = ("service", "status", "latency", "detail", "when down")
        rows = [header] + [
            (c.service, c.status, "-" if c.latency_ms is None else f"{c.latency_ms:.0f} ms", c.detail, c.degrades)
            for c in self.checks
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
            for row in rows
        ]
        return "\n".join([*lines, "", self.verdict()])

    def verdict(self) -> str:
        """One line: can it run, and which services it runs without."""
        blocking = [c.service for c in self.checks if c.blocking]
        degraded = [c.service for c in self.checks if c.status == DOWN and not c.required]
        if blocking:
            return f"ENVIRONMENT={self.environment} cannot run: {', '.join(blocking)} down"
        suffix = f" (degraded: {', '.join(degraded)} down)" if degraded else ""
        return f"ENVIRONMENT={self.environment} can run{suffix}"


@dataclass(frozen=True)
class Probe:
    """How to check one service: what to call, whether it is required, what it degrades."""

    service: str
    call: Callable[[], str] | None
    """Returns a detail to show on success; None: the service is not configured (status `off`)."""
    degrades: str
    required: bool
    off_detail: str = "not configured"


def _host(url: str) -> str:
    """`host:port` of a URL, without user, password, path or query (webhook URLs carry tokens in the path)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


class _Redact:
    """Removes every secret value of the settings from a message."""

    def __init__(self, settings: Settings) -> None:
        values = [getattr(settings, name) for name in SECRET_FIELDS]
        self.secrets = sorted(
            {v.get_secret_value() for v in values if v is not None and v.get_secret_value()}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "******")
        return text


def _postgres(settings: Settings, timeout: float) -> Callable[[], str]:
    def probe() -> str:
        if settings.postgres_dsn is not None:
            dsn, where = settings.postgres_dsn.get_secret_value(), "POSTGRES_DSN"
        else:
            dsn, where = ensure_embedded_postgres(settings.state_dir), "embedded"
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        params = conninfo_to_dict(dsn)
        return f"{where} {params.get('host', '')}:{params.get('port', 5432)} (PostgreSQL {version.split()[0]})"

    return probe


def _redis(url: str, timeout: float) -> Callable[[], str]:
    def probe() -> str:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return _host(url)

    return probe


def _warehouse(settings: Settings, connection_args: Mapping[str, Any] | None) -> Callable[[], str]:
    def probe() -> str:
        resource = snowflake_resource(settings, connection_args)
        with resource.get_connection() as conn:
            conn.cursor().execute("SELECT 1").fetchall()
        return "embedded" if settings.environment == "local" else f"Snowflake account {settings.snowflake_account}"

    return probe


def _estuary(settings: Settings, timeout: float) -> Callable[[], str]:
    def probe() -> str:
        token = settings.estuary_api_token.get_secret_value() if settings.estuary_api_token else ""
        retry = RetryPolicy(max_attempts=1, max_total_seconds=timeout)
        with EstuaryClient(
            token,
            pg_url=settings.estuary_pg_url,
            agent_url=settings.estuary_agent_url,
            encryption_url=settings.estuary_encryption_url,
            anon_key=settings.estuary_anon_key,
            data_plane_name=settings.estuary_data_plane,
            timeout_seconds=timeout,
            retry=retry,
        ) as client:
            client.live_specs([DOCTOR_PROBE_NAME])
        return f"control plane {_host(settings.estuary_pg_url)}"

    return probe


def _esc(settings: Settings, timeout: float) -> Callable[[], str]:
    def probe() -> str:
        variables = open_esc_environment(
            api_url=settings.pulumi_api_url,
            org=settings.pulumi_org or "",
            project=settings.pulumi_project,
            environment=settings.pulumi_environment or "",
            token=settings.pulumi_access_token,
            timeout=timeout,
        )
        return (
            f"{settings.pulumi_org}/{settings.pulumi_project}/{settings.pulumi_environment}: {len(variables)} variables"
        )

    return probe


def _webhook(url: str, timeout: float) -> Callable[[], str]:
    def probe() -> str:
        """Any HTTP answer to HEAD proves the endpoint is there; nothing is posted, so no alert is sent."""
        response = httpx.head(url, timeout=timeout)
        return f"{_host(url)} answered HTTP {response.status_code}"

    return probe


def probes(settings: Settings, timeout: float, warehouse_args: Mapping[str, Any] | None = None) -> list[Probe]:
    """The services of `settings.environment`, in the order the report shows them."""
    local = settings.environment == "local"
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    webhook = settings.alert_webhook_url.get_secret_value() if settings.alert_webhook_url else None
    return [
        Probe(
            "postgresql",
            _postgres(settings, timeout),
            "everything: the source data, memory L2 conversations" + (", the embedded data plane" if local else ""),
            required=True,
        ),
        Probe(
            "redis",
            _redis(redis_url, timeout) if redis_url else None,
            "memory L1 cache skipped: reads fall through to PostgreSQL and the warehouse (slower)",
            required=False,
            off_detail="REDIS_URL unset",
        ),
        Probe(
            "warehouse",
            _warehouse(settings, warehouse_args),
            "materializations, analytics models, memory L4" + ("" if local else ", L3 vectors and L5 Cortex"),
            required=True,
        ),
        Probe(
            "estuary",
            None if local else _estuary(settings, timeout),
            "publishing, pause/resume, status and stats; data keeps flowing in Estuary itself",
            required=not local,
            off_detail="embedded data plane (runs on the PostgreSQL above)",
        ),
        Probe(
            "pulumi esc",
            _esc(settings, timeout) if settings.pulumi_environment else None,
            "settings from ESC: prod refuses to load, local/dev fall back to the other levels",
            required=settings.environment == "prod",
            off_detail="PULUMI_ENVIRONMENT unset",
        ),
        Probe(
            "webhook",
            _webhook(webhook, timeout) if webhook else None,
            "alerts are not delivered (the governance sensor retries them)",
            required=False,
            off_detail="ALERT_WEBHOOK_URL unset",
        ),
    ]


def _run(probe: Probe, redact: _Redact) -> Check:
    if probe.call is None:
        return Check(probe.service, OFF, None, probe.off_detail, probe.degrades, False)
    started = time.perf_counter()
    try:
        detail, status = probe.call(), OK
    except Exception as exc:  # noqa: BLE001 - any failure of a probe is the answer "not reachable"
        first_line = (str(exc).strip().splitlines() or [""])[0][:160]
        detail, status = redact(f"{type(exc).__name__}: {first_line}"), DOWN
    elapsed = (time.perf_counter() - started) * 1000
    return Check(probe.service, status, elapsed, redact(detail), probe.degrades, probe.required)


def check_environment(
    settings: Settings, timeout: float = 5.0, warehouse_args: Mapping[str, Any] | None = None
) -> Report:
    """Probe every service of `settings.environment` concurrently and report what answered.

    Args:
        settings: the effective settings (`sophia_dagster.config.get_settings()` in a running process).
        timeout: seconds each probe may take to connect and answer.
        warehouse_args: extra Snowflake connector arguments in dev/prod (e.g. ``host`` for a private link),
            as `snowflake_resource` takes them.

    Example:
        >>> report = check_environment(get_settings())
        >>> if not report.can_run: raise SystemExit(report.render())
    """
    redact = _Redact(settings)
    planned = probes(settings, timeout, warehouse_args)
    with ThreadPoolExecutor(max_workers=len(planned)) as pool:
        checks = tuple(pool.map(lambda probe: _run(probe, redact), planned))
    return Report(settings.environment, checks)


def main(argv: list[str] | None = None) -> int:
    """`sophia-doctor [--timeout SECONDS]`: print the report; the exit code says whether the environment can run."""
    parser = argparse.ArgumentParser(prog="sophia-doctor", description="Check every service of the environment.")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds each probe may take (default 5)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings().settings
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    report = check_environment(settings, args.timeout)
    print(report.render())
    return EXIT_CAN_RUN if report.can_run else EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
