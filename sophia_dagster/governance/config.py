"""The governance config file: every threshold and severity in one YAML 1.2 file a user edits.

Read with ruamel.yaml (YAML 1.2, as Estuary's tools read YAML) and validated with pydantic, so a bad
value fails with the file, the key path and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

Severity = Literal["WARN", "ERROR"]


class GovernanceConfigError(ValueError):
    """The governance config file cannot be used; the message names the file and the key at fault."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity = "ERROR"

    @property
    def dagster_severity(self) -> dg.AssetCheckSeverity:
        """The severity as Dagster's enum."""
        return dg.AssetCheckSeverity[self.severity]


class ParityConfig(_Section):
    """Source vs warehouse parity by bucketed key checksums."""

    rows_per_bucket: int = Field(256, gt=0)
    max_drill_buckets: int = Field(64, gt=0)
    sample_keys: int = Field(20, ge=0, le=20)


class ForeignKeyConfig(_Section):
    """The source's foreign keys checked among the warehouse's live rows."""

    sample_keys: int = Field(20, ge=0, le=20)


class AnomalyConfig(_Section):
    """Daily change volume against a robust baseline."""

    severity: Severity = "WARN"
    z_threshold: float = Field(3.5, gt=0)
    min_history_days: int = Field(14, gt=0)
    history_days: int = Field(28, gt=0)


class DriftConfig(_Section):
    """Columns vs the collection schema."""

    severity: Severity = "WARN"


class PipelineHealthConfig(_Section):
    """Estuary task status and recent stats."""

    stats_hours: int = Field(24, gt=0)


class PlatformConfig(_Section):
    """Settings, secret hygiene and code health."""

    forbidden_imports: tuple[str, ...] = ("pinecone", "weaviate", "chromadb", "requests")
    secret_scan_max_bytes: int = Field(1_000_000, gt=0)


class Window(BaseModel):
    """A freshness window in minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_minutes: int | None = Field(None, gt=0)
    fail_minutes: int = Field(gt=0)


class FreshnessConfig(BaseModel):
    """Freshness windows of the asset families the code location does not configure elsewhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warehouse_tables: Window = Window(warn_minutes=360, fail_minutes=1440)
    memory_assets: Window = Window(warn_minutes=1440, fail_minutes=2880)
    model_refresh_cron: str = "*/5 * * * *"


class AlertConfig(BaseModel):
    """How alerts are posted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(5.0, gt=0)
    max_attempts: int = Field(4, gt=0)
    max_backoff_seconds: float = Field(8.0, ge=0)


class GovernanceConfig(BaseModel):
    """Every governance threshold and severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parity: ParityConfig = ParityConfig()
    uniqueness: _Section = _Section()
    foreign_keys: ForeignKeyConfig = ForeignKeyConfig()
    schema_drift: DriftConfig = DriftConfig()
    volume_anomaly: AnomalyConfig = AnomalyConfig()
    pipeline_health: PipelineHealthConfig = PipelineHealthConfig()
    platform: PlatformConfig = PlatformConfig()
    freshness: FreshnessConfig = FreshnessConfig()
    alerts: AlertConfig = AlertConfig()


def load_governance_config(path: Path) -> GovernanceConfig:
    """Read and validate the governance config file.

    Args:
        path: the YAML 1.2 file (``sophia_dagster/defs/governance.yaml`` for this platform).

    Example:
        >>> load_governance_config(Path("sophia_dagster/defs/governance.yaml")).parity.severity
        'ERROR'
    """
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except OSError as exc:
        raise GovernanceConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except YAMLError as exc:
        raise GovernanceConfigError(f"{path}: not valid YAML 1.2: {exc}") from None
    try:
        return GovernanceConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise GovernanceConfigError(f"{path}: {problems}") from None
