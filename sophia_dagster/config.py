"""Settings for the code location: one object, four levels, secrets masked.

Precedence, highest first: the process environment (then `local.env` in the working
directory, which never overrides a variable already set), Pulumi ESC, the config file
(`sophia.toml`, or the path in `SOPHIA_CONFIG_FILE`), and the defaults below.
"""

from __future__ import annotations

import functools
import os
import sys
import tomllib
import typing
import warnings
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from sophia_dagster.esc import EscError, open_esc_environment

DEFAULT_CONFIG_FILE = "sophia.toml"
DOTENV_FILE = "local.env"
Environment = Literal["local", "dev", "prod"]
# Estuary's public PostgREST key, published as DEFAULT_PG_PUBLIC_TOKEN in flowctl: configuration, not a secret.
ESTUARY_PUBLIC_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZSIsInJlZiI6ImV5cmNubXV6enlyaXlwZGFqd2RrIiwicm9sZSI6"
    "ImFub24iLCJpYXQiOjE2NDg3NTA1NzksImV4cCI6MTk2NDMyNjU3OX0.y1OyXD3-DYMz10eGxzo1eeamVMMUwIIeOoMryTRAoco"
)


class ConfigError(ValueError):
    """Configuration that cannot be used, with every problem named in one message."""


class Settings(BaseSettings):
    """The effective configuration of the platform."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    environment: Environment = "local"
    state_dir: Path = Field(Path(".sophia"), description="Where the embedded engines keep their data")
    config_file: Path | None = Field(None, validation_alias=AliasChoices("SOPHIA_CONFIG_FILE", "config_file"))

    postgres_dsn: SecretStr | None = Field(None, description="Source PostgreSQL; embedded server when unset")
    redis_url: SecretStr | None = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="Memory L1; the tier is skipped when unreachable"
    )

    snowflake_account: str | None = None
    snowflake_user: str | None = None
    snowflake_pat: SecretStr | None = Field(None, description="Programmatic access token (preferred)")
    snowflake_private_key: SecretStr | None = Field(None, description="PEM key-pair private key")
    snowflake_private_key_path: Path | None = None
    snowflake_private_key_passphrase: SecretStr | None = None
    snowflake_password: SecretStr | None = None
    snowflake_role: str | None = None
    snowflake_warehouse: str | None = None
    snowflake_database: str = "SOPHIA"
    snowflake_schema: str = "RAW"

    estuary_api_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ESTUARY_API_TOKEN", "FLOW_AUTH_TOKEN", "estuary_api_token"),
        description="Estuary refresh token (base64 JSON) or access JWT",
    )
    estuary_pg_url: str = "https://eyrcnmuzzyriypdajwdk.supabase.co/rest/v1"
    estuary_agent_url: str = "https://api.estuary.dev"
    estuary_encryption_url: str = "https://config-encryption.estuary.dev/"
    estuary_anon_key: str = Field(ESTUARY_PUBLIC_ANON_KEY, description="Estuary's published PostgREST anon key")
    estuary_data_plane: str = "ops/dp/public/gcp-us-central1-c1"

    hubspot_access_token: SecretStr | None = Field(
        None, description="HubSpot private app token; locally the HubSpot capture runs only when it is set"
    )
    hubspot_api_url: str = Field("https://api.hubapi.com", description="HubSpot's API base URL")

    pulumi_org: str | None = None
    pulumi_project: str = "sophia"
    pulumi_environment: str | None = Field(None, description="ESC environment to open; ESC is off when unset")
    pulumi_access_token: SecretStr | None = None
    pulumi_api_url: str = "https://api.pulumi.com"
    pulumi_timeout_seconds: float = 3.0

    alert_webhook_url: SecretStr | None = Field(None, description="n8n or Slack webhook for run-failure alerts")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only explicit values: `load_settings` layers the sources itself so it can tell origins."""
        return (init_settings,)

    @field_validator("postgres_dsn")
    @classmethod
    def _parseable_dsn(cls, dsn: SecretStr | None) -> SecretStr | None:
        """A DSN libpq cannot parse fails at load, before libpq's message (which quotes it) can reach a log."""
        if dsn is not None:
            try:
                conninfo_to_dict(dsn.get_secret_value())
            except ProgrammingError:
                raise ValueError(
                    "not a PostgreSQL connection string (postgresql://user:password@host:port/dbname, "
                    "or key=value pairs)"
                ) from None
        return dsn

    @model_validator(mode="after")
    def _require_cloud_credentials(self) -> Settings:
        missing = self.missing_for_cloud()
        if missing:
            raise ValueError(f"ENVIRONMENT={self.environment} is missing required settings: {', '.join(missing)}")
        return self

    def missing_for_cloud(self) -> list[str]:
        """Names of the variables dev and prod need that are not set."""
        if self.environment == "local":
            return []
        missing = [name.upper() for name in ("snowflake_account", "snowflake_user") if not getattr(self, name)]
        if not (
            self.snowflake_pat
            or self.snowflake_private_key
            or self.snowflake_private_key_path
            or self.snowflake_password
        ):
            missing.append("one of SNOWFLAKE_PAT, SNOWFLAKE_PRIVATE_KEY(_PATH), SNOWFLAKE_PASSWORD")
        if not self.estuary_api_token:
            missing.append("ESTUARY_API_TOKEN (or FLOW_AUTH_TOKEN)")
        if (self.pulumi_environment or self.pulumi_access_token) and not self.pulumi_org:
            missing.append("PULUMI_ORG")
        if self.pulumi_environment and not self.pulumi_access_token:
            missing.append("PULUMI_ACCESS_TOKEN")
        return missing

    @property
    def uses_embedded_postgres(self) -> bool:
        """Whether the source database is the embedded server."""
        return self.environment == "local" and self.postgres_dsn is None


FIELD_NAMES = tuple(Settings.model_fields)
_ALIASES = {
    alias.lower(): name
    for name, field in Settings.model_fields.items()
    if isinstance(field.validation_alias, AliasChoices)
    for alias in field.validation_alias.choices
    if isinstance(alias, str)
}


@dataclass(frozen=True)
class LoadedSettings:
    """Settings together with the level each value came from."""

    settings: Settings
    origins: Mapping[str, str]
    variables: Mapping[str, str]
    """Every variable local.env and Pulumi ESC define (the catalog's `${VAR}` placeholders read them)."""


class _MappingEnvSource(EnvSettingsSource):
    """Reads settings from a mapping of environment-variable names (used for Pulumi ESC values)."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str]) -> None:
        self._values = values
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): str(value) for key, value in self._values.items()}


def _by_field(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keys of a source's output renamed to field names; unknown keys dropped."""
    named: dict[str, Any] = {}
    for key, value in values.items():
        name = _ALIASES.get(key.lower(), key.lower())
        if name in FIELD_NAMES and value is not None:
            named[name] = value
    return named


def _read_config_file(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.is_file():
        if explicit:
            raise ConfigError(f"config file {path} (SOPHIA_CONFIG_FILE) does not exist")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"config file {path} has unknown keys: {', '.join(unknown)}")
    return data


def _esc_variables(layered: Mapping[str, Any], environment: str) -> dict[str, str]:
    """The variables of the Pulumi ESC environment named by the lower levels, if one is named."""
    try:
        probe = Settings(**{**layered, "environment": "local"})
    except ValidationError:
        return {}  # the final validation reports what is wrong
    if not probe.pulumi_environment:
        return {}
    try:
        variables = open_esc_environment(
            api_url=probe.pulumi_api_url,
            org=probe.pulumi_org or "",
            project=probe.pulumi_project,
            environment=probe.pulumi_environment,
            token=probe.pulumi_access_token,
            timeout=probe.pulumi_timeout_seconds,
        )
    except EscError as exc:
        if environment == "prod":
            raise ConfigError(f"Pulumi ESC is configured but could not be read: {exc}") from None
        warnings.warn(f"Pulumi ESC skipped: {exc}", stacklevel=3)
        return {}
    return variables


def _fields_of(variables: Mapping[str, str]) -> dict[str, Any]:
    """The settings that a mapping of environment variables holds, by field name."""
    return _by_field(_MappingEnvSource(Settings, variables)())


def _describe_errors(exc: ValidationError, origins: Mapping[str, str]) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        where = f"{field.upper()} (from {origins.get(field, 'default')})" if field else "settings"
        problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "invalid configuration: " + "; ".join(problems)


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> LoadedSettings:
    """Read every level, merge them by precedence and validate the result once."""
    cwd = cwd or Path.cwd()
    env_source = _MappingEnvSource(Settings, environ) if environ is not None else EnvSettingsSource(Settings)
    process = _by_field(env_source())
    dotenv_variables = {k: v for k, v in dotenv_values(cwd / DOTENV_FILE).items() if v is not None}
    dotenv = _fields_of(dotenv_variables)
    upper = {**dotenv, **process}
    explicit_file = upper.get("config_file")
    config_file = Path(explicit_file) if explicit_file else cwd / DEFAULT_CONFIG_FILE
    if not config_file.is_absolute():
        config_file = cwd / config_file
    from_file = _read_config_file(config_file, explicit=bool(explicit_file))
    environment = str(upper.get("environment", from_file.get("environment", "local")))
    esc_variables = _esc_variables({**from_file, **upper}, environment)
    esc = _fields_of(esc_variables)

    layers = (
        (f"config file {config_file.name}", from_file),
        ("pulumi esc", esc),
        (DOTENV_FILE, dotenv),
        ("environment", process),
    )
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for origin, values in layers:
        merged.update(values)
        origins.update(dict.fromkeys(values, origin))
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, origins)) from None
    origins = {name: origins.get(name, "default") for name in FIELD_NAMES}
    return LoadedSettings(settings, origins, {**esc_variables, **dotenv_variables})


SECRET_FIELDS = tuple(
    name for name, field in Settings.model_fields.items() if SecretStr in typing.get_args(field.annotation)
)


def export_environment(loaded: LoadedSettings, environ: MutableMapping[str, str] = os.environ) -> None:
    """Put local.env's and ESC's variables, and every secret under its field's name, into the environment.

    Resources bind secrets with `dg.EnvVar`, so the Dagster UI shows a variable's name, never its
    value, and `${VAR}` placeholders resolve whatever level defined them. Variables already set win.
    """
    for name, value in loaded.variables.items():
        environ.setdefault(name, value)
    for name in SECRET_FIELDS:
        value = getattr(loaded.settings, name)
        if value is not None:
            environ.setdefault(name.upper(), value.get_secret_value())


@functools.cache
def get_settings() -> Settings:
    """The settings of this process, read once; their variables are exported (see `export_environment`)."""
    loaded = load_settings()
    export_environment(loaded)
    return loaded.settings


def _masked(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "****** (set)"
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def render(loaded: LoadedSettings) -> str:
    """A table of every setting, its value with secrets masked, and where it came from."""
    rows = [(name.upper(), _masked(getattr(loaded.settings, name)), loaded.origins[name]) for name in FIELD_NAMES]
    width_name = max(len(r[0]) for r in rows)
    width_value = max(len(r[1]) for r in rows)
    return "\n".join(f"{n:<{width_name}}  {v:<{width_value}}  {o}" for n, v, o in rows)


def main(argv: list[str] | None = None) -> int:
    """`sophia-config show`: print the effective settings, masked, with their origins."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["show"]):
        print("usage: sophia-config [show]", file=sys.stderr)
        return 2
    try:
        print(render(load_settings()))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
