"""Settings: the four levels, local.env, prod's one-message check, masking, and Pulumi ESC."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from sophia_dagster import config
from sophia_dagster.config import ConfigError, export_environment, load_settings
from tests.fakes.pulumi_esc import running_fake_esc

CANARY = "canary-7f3e9b1c-do-not-print"
ESC_TOKEN = "pul-esc-canary-token-0001"
PROD_ENV = {
    "ENVIRONMENT": "prod",
    "SNOWFLAKE_ACCOUNT": "acme-prod",
    "SNOWFLAKE_USER": "svc_sophia",
    "SNOWFLAKE_PAT": CANARY,
    "ESTUARY_API_TOKEN": CANARY,
}


URL_SHAPES = {
    "postgres_dsn": "host=db password={}",
    "redis_url": "redis://:{}@cache:6379/0",
    "alert_webhook_url": "https://hooks.example.com/{}",
}


def _esc_environ(url: str) -> dict[str, str]:
    return {
        "PULUMI_ORG": "sophia-org",
        "PULUMI_PROJECT": "platform",
        "PULUMI_ENVIRONMENT": "prod",
        "PULUMI_ACCESS_TOKEN": ESC_TOKEN,
        "PULUMI_API_URL": url,
    }


def test_defaults_run_local_with_nothing_set(tmp_path: Path) -> None:
    loaded = load_settings(environ={}, cwd=tmp_path)
    assert loaded.settings.environment == "local"
    assert loaded.settings.uses_embedded_postgres
    assert set(loaded.origins.values()) == {"default"}


def test_each_level_wins_over_the_ones_below(tmp_path: Path) -> None:
    (tmp_path / "sophia.toml").write_text(
        'snowflake_warehouse = "FILE_WH"\nsnowflake_role = "FILE_ROLE"\n'
        'snowflake_schema = "FILE_SCHEMA"\nsnowflake_database = "FILE_DB"\n'
    )
    (tmp_path / "local.env").write_text("SNOWFLAKE_SCHEMA=DOTENV_SCHEMA\nSNOWFLAKE_DATABASE=DOTENV_DB\n")
    with running_fake_esc(ESC_TOKEN) as esc:
        esc.environments["sophia-org/platform/prod"] = {
            "environmentVariables": {
                "SNOWFLAKE_ROLE": "ESC_ROLE",
                "SNOWFLAKE_SCHEMA": "ESC_SCHEMA",
                "SNOWFLAKE_DATABASE": "ESC_DB",
            }
        }
        environ = {**_esc_environ(esc.url), "SNOWFLAKE_DATABASE": "ENV_DB"}
        loaded = load_settings(environ=environ, cwd=tmp_path)
    settings, origins = loaded.settings, loaded.origins
    assert (settings.snowflake_warehouse, origins["snowflake_warehouse"]) == ("FILE_WH", "config file sophia.toml")
    assert (settings.snowflake_role, origins["snowflake_role"]) == ("ESC_ROLE", "pulumi esc")
    assert (settings.snowflake_schema, origins["snowflake_schema"]) == ("DOTENV_SCHEMA", "local.env")
    assert (settings.snowflake_database, origins["snowflake_database"]) == ("ENV_DB", "environment")
    assert (settings.snowflake_user, origins["snowflake_user"]) == (None, "default")


def test_local_env_never_overrides_the_environment_nor_leaks_into_it(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "local.env").write_text("REDIS_URL=redis://from-file:6379/0\nSNOWFLAKE_ROLE=FROM_FILE\n")
    monkeypatch.setenv("REDIS_URL", "redis://from-env:6379/0")
    monkeypatch.delenv("SNOWFLAKE_ROLE", raising=False)
    settings = load_settings(cwd=tmp_path).settings
    assert settings.redis_url.get_secret_value() == "redis://from-env:6379/0"
    assert settings.snowflake_role == "FROM_FILE"
    import os

    assert "SNOWFLAKE_ROLE" not in os.environ


def test_prod_with_nothing_set_lists_every_missing_name_in_one_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={"ENVIRONMENT": "prod"}, cwd=tmp_path)
    message = str(raised.value)
    for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PAT", "ESTUARY_API_TOKEN"):
        assert name in message
    assert message.count("ENVIRONMENT=prod") == 1


def test_prod_using_esc_needs_the_pulumi_org(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PULUMI_ORG"):
        load_settings(environ={**PROD_ENV, "PULUMI_ACCESS_TOKEN": ESC_TOKEN}, cwd=tmp_path)


def test_prod_with_everything_set_loads(tmp_path: Path) -> None:
    settings = load_settings(environ=PROD_ENV, cwd=tmp_path).settings
    assert settings.environment == "prod"
    assert settings.snowflake_pat.get_secret_value() == CANARY
    assert CANARY not in repr(settings)


def test_flowctl_token_name_is_accepted(tmp_path: Path) -> None:
    environ = {**PROD_ENV, "FLOW_AUTH_TOKEN": "flow-token"}
    del environ["ESTUARY_API_TOKEN"]
    assert load_settings(environ=environ, cwd=tmp_path).settings.estuary_api_token.get_secret_value() == "flow-token"


def test_a_bad_value_names_the_key_and_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "local.env").write_text("ENVIRONMENT=staging\n")
    with pytest.raises(ConfigError, match=r"ENVIRONMENT \(from local.env\)"):
        load_settings(environ={}, cwd=tmp_path)


@pytest.mark.parametrize("dsn", [f"postgresql//app:{CANARY}@db/sophia", f"host=db password={CANARY} sslmode"])
def test_an_unparseable_postgres_dsn_is_named_without_its_value(tmp_path: Path, dsn: str) -> None:
    with pytest.raises(ConfigError, match=r"POSTGRES_DSN \(from environment\): not a PostgreSQL connection") as raised:
        load_settings(environ={"POSTGRES_DSN": dsn}, cwd=tmp_path)
    assert CANARY not in str(raised.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("snowflake_role = [unclosed", "not valid TOML"), ('snowflake_rol = "X"', "unknown keys: snowflake_rol")],
)
def test_a_broken_config_file_is_named(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "sophia.toml").write_text(content)
    with pytest.raises(ConfigError, match=expected) as raised:
        load_settings(environ={}, cwd=tmp_path)
    assert "sophia.toml" in str(raised.value)


def test_a_named_config_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.toml"):
        load_settings(environ={"SOPHIA_CONFIG_FILE": "missing.toml"}, cwd=tmp_path)


def test_show_masks_every_secret_and_names_origins(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for name in config.SECRET_FIELDS:
        shape = URL_SHAPES.get(name, "{}")  # a DSN or URL must parse
        monkeypatch.setenv(name.upper(), shape.format(f"{CANARY}-{name}"))
    assert config.main(["show"]) == 0
    out = capsys.readouterr().out
    assert CANARY not in out
    assert out.count("****** (set)") == len(config.SECRET_FIELDS)
    assert "SNOWFLAKE_PAT" in out and "environment" in out


def test_export_keeps_variables_already_set_and_adds_the_files_variables(tmp_path: Path) -> None:
    (tmp_path / "local.env").write_text("POSTGRES_CAPTURE_PASSWORD=from-file\nSNOWFLAKE_PAT=from-file\n")
    environ = {**PROD_ENV, "FLOW_AUTH_TOKEN": "flow"}
    del environ["ESTUARY_API_TOKEN"]
    loaded = load_settings(environ=environ, cwd=tmp_path)
    target = {"SNOWFLAKE_PAT": "already-set"}
    export_environment(loaded, target)
    assert target["SNOWFLAKE_PAT"] == "already-set"
    assert target["ESTUARY_API_TOKEN"] == "flow"
    assert target["POSTGRES_CAPTURE_PASSWORD"] == "from-file"


def test_esc_unreachable_warns_and_falls_through_outside_prod(tmp_path: Path) -> None:
    environ = {**_esc_environ("http://127.0.0.1:9"), "PULUMI_TIMEOUT_SECONDS": "0.5"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings(environ=environ, cwd=tmp_path).settings
    assert settings.environment == "local"
    assert any("Pulumi ESC skipped" in str(w.message) for w in caught)
    assert all(ESC_TOKEN not in str(w.message) for w in caught)


def test_esc_unreachable_is_an_error_in_prod(tmp_path: Path) -> None:
    environ = {**PROD_ENV, **_esc_environ("http://127.0.0.1:9"), "PULUMI_TIMEOUT_SECONDS": "0.5"}
    with pytest.raises(ConfigError, match="sophia-org/platform/prod") as raised:
        load_settings(environ=environ, cwd=tmp_path)
    assert ESC_TOKEN not in str(raised.value)


def test_esc_rejecting_the_token_names_the_status_not_the_token(tmp_path: Path) -> None:
    with running_fake_esc("another-token") as esc:
        esc.environments["sophia-org/platform/prod"] = {"environmentVariables": {}}
        with pytest.raises(ConfigError) as raised:
            load_settings(environ={**PROD_ENV, **_esc_environ(esc.url)}, cwd=tmp_path)
    assert "HTTP 401" in str(raised.value)
    assert ESC_TOKEN not in str(raised.value)


def test_esc_secrets_and_nested_values_arrive_as_strings(tmp_path: Path) -> None:
    with running_fake_esc(ESC_TOKEN) as esc:
        esc.environments["sophia-org/platform/prod"] = {
            "environmentVariables": {"SNOWFLAKE_PAT": CANARY, "PULUMI_TIMEOUT_SECONDS": 2},
            "other": {"ignored": True},
        }
        loaded = load_settings(environ=_esc_environ(esc.url), cwd=tmp_path)
        assert [method for method, _ in esc.requests] == ["POST", "GET"]
    assert loaded.settings.snowflake_pat.get_secret_value() == CANARY
    assert loaded.settings.pulumi_timeout_seconds == 2.0
    assert loaded.origins["snowflake_pat"] == "pulumi esc"


def test_the_seeds_example_names_are_not_defaults() -> None:
    package = Path(config.__file__).parent
    sources = "".join(path.read_text() for path in package.rglob("*") if path.suffix in {".py", ".yaml", ".toml"})
    for example in ("SCOOBYJAVA15", "UHDECNO", "scoobyjava"):
        assert example not in sources


def test_esc_answering_a_malformed_environment_is_named(tmp_path: Path) -> None:
    with running_fake_esc(ESC_TOKEN) as esc:
        esc.environments["sophia-org/platform/prod"] = {"environmentVariables": ["not", "an", "object"]}
        with pytest.raises(ConfigError, match="environmentVariables is not an object"):
            load_settings(environ={**PROD_ENV, **_esc_environ(esc.url)}, cwd=tmp_path)
