"""The platform asset and its checks: settings valid for the environment, secret hygiene, code health.

The asset stands for the code location itself (its tracked files and settings), so checks that judge
the platform rather than a table have somewhere to hang.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from sophia_dagster.config import ConfigError, load_settings
from sophia_dagster.estuary.workspace import DEFAULT_ANON_KEY
from sophia_dagster.governance import platform
from sophia_dagster.governance.config import GovernanceConfig

PLATFORM_KEY = dg.AssetKey(["governance", "platform"])
SETTINGS_VALID, SECRET_HYGIENE, CODE_HEALTH = "settings_valid", "secret_hygiene", "code_health"
ALLOW_MARKERS = ("canary", "example", "placeholder")
"""A credential-shaped match containing one of these words is a documented fake (test canaries, examples)."""


def _result(
    name: str, problems: Sequence[str], severity: dg.AssetCheckSeverity, next_step: str, **metadata: Any
) -> dg.AssetCheckResult:
    summary = f"{len(problems)} problems: " + "; ".join(problems[:5]) if problems else "ok"
    return dg.AssetCheckResult(
        asset_key=PLATFORM_KEY,
        check_name=name,
        passed=not problems,
        severity=severity,
        description=summary,
        metadata={
            "summary": summary,
            "problems": dg.MetadataValue.json(list(problems)),
            "next_step": next_step if problems else "nothing to do",
            **metadata,
        },
    )


def settings_problems(cwd: Path | None = None) -> tuple[str, list[str]]:
    """The environment named by this process's settings (read from ``cwd``), and what keeps them from being valid."""
    try:
        settings = load_settings(cwd=cwd).settings
    except ConfigError as exc:
        return "unknown", [str(exc)]
    problems = []
    if settings.environment != "local" and settings.alert_webhook_url is None:
        problems.append(f"ALERT_WEBHOOK_URL is not set in {settings.environment}: alerts go nowhere")
    return settings.environment, problems


def secret_hygiene(root: Path, config: GovernanceConfig) -> dg.AssetCheckResult:
    """No credential-shaped string in any tracked file; local.env untracked and not world-readable."""
    files = platform.tracked_files(root)
    findings = platform.scan_secrets(
        root, files, ALLOW_MARKERS, (DEFAULT_ANON_KEY,), config.platform.secret_scan_max_bytes
    ) + platform.local_env_findings(root, files)
    return _result(
        SECRET_HYGIENE,
        [str(f) for f in findings],
        config.platform.dagster_severity,
        "Move the value into local.env, Pulumi ESC or a ${VAR} placeholder, rotate it, and purge it from history.",
        files_scanned=len(files),
    )


def code_health(root: Path, package: Path, config: GovernanceConfig) -> dg.AssetCheckResult:
    """No forbidden imports; no import cycles among the package's modules."""
    found = platform.code_health(package, config.platform.forbidden_imports)
    problems = [str(f) for f in found.forbidden] + [f"import cycle: {' -> '.join(c)}" for c in found.cycles]
    return _result(
        CODE_HEALTH,
        problems,
        config.platform.dagster_severity,
        "Use httpx instead of requests and the platform's own vector tiers; break cycles by moving shared code down.",
        forbidden=config.platform.forbidden_imports and list(config.platform.forbidden_imports),
    )


def build_platform_assets(
    root: Path, package: Path, config: GovernanceConfig
) -> tuple[dg.AssetsDefinition, list[dg.AssetChecksDefinition]]:
    """The platform asset and its three checks.

    Args:
        root: the repository root (where ``local.env`` and the tracked files are).
        package: the Python package whose imports are judged.
        config: severities and the forbidden imports.

    Example:
        >>> asset, checks = build_platform_assets(Path("."), Path("sophia_dagster"), config)
    """

    @dg.asset(
        key=PLATFORM_KEY,
        group_name="governance",
        kinds={"python"},
        description="The code location itself: its tracked files, settings and Python package.",
    )
    def platform_asset() -> dg.MaterializeResult:
        files = platform.tracked_files(root)
        environment, _ = settings_problems()
        return dg.MaterializeResult(
            metadata={
                "environment": environment,
                "tracked_files": len(files),
                "python_modules": sum(1 for _ in package.rglob("*.py")),
            }
        )

    @dg.asset_check(asset=PLATFORM_KEY, name=SETTINGS_VALID, description="Settings are valid for the environment")
    def settings_check() -> dg.AssetCheckResult:
        environment, problems = settings_problems()
        return _result(
            SETTINGS_VALID,
            problems,
            config.platform.dagster_severity,
            "Run `sophia-config show` and set what is missing.",
            environment=environment,
        )

    @dg.asset_check(asset=PLATFORM_KEY, name=SECRET_HYGIENE, description="No secrets in tracked files")
    def hygiene_check() -> dg.AssetCheckResult:
        return secret_hygiene(root, config)

    @dg.asset_check(asset=PLATFORM_KEY, name=CODE_HEALTH, description="No forbidden imports, no import cycles")
    def code_check() -> dg.AssetCheckResult:
        return code_health(root, package, config)

    return platform_asset, [settings_check, hygiene_check, code_check]
