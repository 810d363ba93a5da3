"""Bad configuration fails at load with ConfigError naming the variable and its level; nothing else escapes."""

from __future__ import annotations

import os
import string
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sophia_dagster.config import FIELD_NAMES, ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
SOPHIA_CONFIG = Path(sys.executable).parent / "sophia-config"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REDIS_URL", "notaurl", "REDIS_URL (from local.env): not a Redis URL"),
        ("SNOWFLAKE_ACCOUNT", "my snowflake account", "SNOWFLAKE_ACCOUNT (from local.env): 'my snowflake account'"),
        ("PULUMI_API_URL", "http://[::1", "PULUMI_API_URL (from local.env): not an http(s) URL"),
        ("PULUMI_TIMEOUT_SECONDS", "inf", "PULUMI_TIMEOUT_SECONDS (from local.env)"),
        ("ESTUARY_AGENT_URL", "api.estuary.dev", "ESTUARY_AGENT_URL (from local.env): not an http(s) URL"),
        ("SNOWFLAKE_SCHEMA", "RAW; DROP", "SNOWFLAKE_SCHEMA (from local.env)"),
    ],
)
def test_a_bad_value_in_local_env_is_refused_naming_it(tmp_path: Path, name: str, value: str, message: str) -> None:
    (tmp_path / "local.env").write_text(f"{name}={value}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={}, cwd=tmp_path)
    assert message in str(raised.value)


def test_a_state_dir_that_is_a_file_is_refused_naming_state_dir(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"STATE_DIR \(from environment\): .*afile exists and is not a directory"):
        load_settings(environ={"STATE_DIR": str(tmp_path / "afile")}, cwd=tmp_path)


def test_a_redis_url_with_a_password_is_refused_without_quoting_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL") as raised:
        load_settings(environ={"REDIS_URL": "http://:hunter2-canary@host:6379/0"}, cwd=tmp_path)
    assert "hunter2-canary" not in str(raised.value)


def test_a_nul_byte_in_local_env_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "local.env").write_bytes(b"POSTGRES_CAPTURE_PASSWORD=ab\x00cd\n")
    with pytest.raises(ConfigError, match=r"'POSTGRES_CAPTURE_PASSWORD' \(from .*local.env\): contains a NUL byte"):
        load_settings(environ={}, cwd=tmp_path)


def test_a_garbage_line_in_local_env_warns_naming_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "local.env").write_text("STATE_DIR=.state\nthis is not an assignment\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_settings(environ={}, cwd=tmp_path)
    assert loaded.settings.state_dir == Path(".state")
    assert [str(w.message) for w in caught] == [f"{tmp_path / 'local.env'}: line 2 is not NAME=value; ignored"]


@pytest.mark.parametrize(
    ("local_env", "message"),
    [
        (b"STATE_DIR=\xff\xfe\n", "local.env is not UTF-8 text (byte 10)"),
        (b"PULUMI_API_URL=http://[::1\n", "PULUMI_API_URL (from local.env): not an http(s) URL"),
        (b"PULUMI_TIMEOUT_SECONDS=inf\n", "PULUMI_TIMEOUT_SECONDS (from local.env)"),
    ],
)
def test_sophia_config_show_prints_one_clean_line(tmp_path: Path, local_env: bytes, message: str) -> None:
    (tmp_path / "local.env").write_bytes(local_env)
    env = {key: value for key, value in os.environ.items() if key.lower() not in FIELD_NAMES}
    done = subprocess.run(
        [str(SOPHIA_CONFIG), "show"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


NAMES = st.sampled_from([name.upper() for name in FIELD_NAMES] + ["FLOW_AUTH_TOKEN", "OTHER_VAR"])
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["inf", "nan", "-1", "0", "1e309", "http://[::1", "redis://", "local", "prod", "/", ".", "a\x00b"]),
    st.text(alphabet=string.printable, max_size=20),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(environ=st.dictionaries(NAMES, VALUES, max_size=6), local_env=st.binary(max_size=200))
def test_any_environment_and_local_env_load_or_raise_config_error(
    tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str], local_env: bytes
) -> None:
    cwd = tmp_path_factory.mktemp("cfg")
    (cwd / "local.env").write_bytes(local_env)
    environ.pop("PULUMI_ENVIRONMENT", None)  # never reach out to a real ESC endpoint
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_settings(environ=environ, cwd=cwd)
        except ConfigError:
            pass
