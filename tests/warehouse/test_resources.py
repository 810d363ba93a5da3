"""The Snowflake resource factory: auth selection, how each method reaches Snowflake's login, and errors."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster_shared.serdes import serialize_value
from dagster_snowflake import SnowflakeResource
from pydantic import ValidationError

from sophia_dagster.config import Settings
from sophia_dagster.defs.warehouse import defs
from sophia_dagster.warehouse.embedded import EmbeddedSnowflakeResource, ensure_embedded_warehouse
from sophia_dagster.warehouse.resources import (
    CloudSnowflakeResource,
    SnowflakeAuthError,
    SnowflakeConnectionError,
    snowflake_resource,
)
from tests.warehouse.fake_snowflake import fake_snowflake

PAT_CANARY = "pat-canary-7f3e91c2"
PASSWORD_CANARY = "password-canary-2b8d44"
PASSPHRASE_CANARY = "passphrase-canary-93aa01"
ESTUARY = {"estuary_api_token": "estuary-token"}


def cloud_settings(**values: Any) -> Settings:
    """Settings for `dev` with an account, a user, a role and a warehouse, plus `values`."""
    base = {
        "environment": "dev",
        "snowflake_account": "acme-xy12345",
        "snowflake_user": "SOPHIA_DAGSTER",
        "snowflake_role": "SOPHIA_TRANSFORMER_ROLE",
        "snowflake_warehouse": "SOPHIA_AI_COMPUTE_WH",
        **ESTUARY,
    }
    return Settings(**{**base, **values})


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey, passphrase: str | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def fake_args(port: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "login_timeout": 10,
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }


def connect_error(resource: CloudSnowflakeResource) -> str:
    with pytest.raises(SnowflakeConnectionError) as caught:
        with resource.get_connection():
            pass
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    return str(caught.value)


def test_local_is_the_embedded_warehouse(tmp_path: Path) -> None:
    resource = snowflake_resource(Settings(state_dir=tmp_path, snowflake_database="SOPHIA", snowflake_schema="RAW"))
    assert isinstance(resource, EmbeddedSnowflakeResource)
    assert resource.state_dir == str(tmp_path.resolve())
    assert (resource.database, resource.schema_) == ("SOPHIA", "RAW")


def test_pat_is_preferred_over_key_pair_and_password(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    key_path = tmp_path / "key.p8"
    key_path.write_bytes(pem(rsa_key))
    resource = snowflake_resource(
        cloud_settings(
            snowflake_pat=PAT_CANARY, snowflake_private_key_path=key_path, snowflake_password=PASSWORD_CANARY
        )
    )
    assert isinstance(resource, CloudSnowflakeResource)
    assert (resource.authenticator, resource.auth_method) == ("PROGRAMMATIC_ACCESS_TOKEN", "programmatic access token")
    assert (resource.role, resource.warehouse, resource.database, resource.schema_) == (
        "SOPHIA_TRANSFORMER_ROLE",
        "SOPHIA_AI_COMPUTE_WH",
        "SOPHIA",
        "RAW",
    )
    args = resource._connection_args
    assert args["authenticator"] == "PROGRAMMATIC_ACCESS_TOKEN" and args["token"] == PAT_CANARY
    assert "password" not in args and "private_key" not in args


def test_key_pair_is_preferred_over_password(rsa_key: rsa.RSAPrivateKey) -> None:
    resource = snowflake_resource(
        cloud_settings(snowflake_private_key=pem(rsa_key).decode(), snowflake_password=PASSWORD_CANARY)
    )
    args = resource._connection_args
    assert (resource.auth_method, args["authenticator"]) == ("key pair", "SNOWFLAKE_JWT")
    assert args["private_key"].private_numbers() == rsa_key.private_numbers()
    assert "password" not in args


def test_password_when_it_is_the_only_credential() -> None:
    resource = snowflake_resource(cloud_settings(snowflake_password=PASSWORD_CANARY))
    args = resource._connection_args
    assert (resource.auth_method, args["authenticator"], args["password"]) == ("password", "SNOWFLAKE", PASSWORD_CANARY)


def test_no_credentials_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="SNOWFLAKE_PAT, SNOWFLAKE_PRIVATE_KEY\\(_PATH\\), SNOWFLAKE_PASSWORD"):
        cloud_settings()
    unchecked = Settings.model_construct(
        **{**Settings().model_dump(), "environment": "prod", "snowflake_account": "acme", "snowflake_user": "u"}
    )
    with pytest.raises(SnowflakeAuthError, match="ENVIRONMENT=prod needs Snowflake credentials: set one of"):
        snowflake_resource(unchecked)


def repository_snapshot(resource: dg.ConfigurableResource) -> str:
    """What the web UI receives about a code location holding the warehouse assets and `resource`."""
    definitions = dg.Definitions.merge(defs(), dg.Definitions(resources={"snowflake": resource}))
    return serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))


def test_secrets_stay_out_of_the_dagster_config(rsa_key: rsa.RSAPrivateKey) -> None:
    plain = SnowflakeResource(account="acme", user="u", password=PASSWORD_CANARY)
    assert PASSWORD_CANARY in repository_snapshot(plain)
    for settings in (
        cloud_settings(snowflake_pat=PAT_CANARY),
        cloud_settings(snowflake_password=PASSWORD_CANARY),
        cloud_settings(
            snowflake_private_key=pem(rsa_key, PASSPHRASE_CANARY).decode(),
            snowflake_private_key_passphrase=PASSPHRASE_CANARY,
        ),
    ):
        resource = snowflake_resource(settings)
        shown = repository_snapshot(resource) + json.dumps(resource._resolved_config_dict, default=str) + repr(resource)
        for canary in (PAT_CANARY, PASSWORD_CANARY, PASSPHRASE_CANARY, "PRIVATE KEY"):
            assert canary not in shown


def test_pat_reaches_the_login_request_and_failures_name_account_and_method() -> None:
    with fake_snowflake() as fake:
        resource = snowflake_resource(cloud_settings(snowflake_pat=PAT_CANARY), fake_args(fake.port))
        message = connect_error(resource)
    assert len(fake.logins) == 1
    login = fake.logins[0]
    assert (login["AUTHENTICATOR"], login["TOKEN"], login["ACCOUNT_NAME"]) == (
        "PROGRAMMATIC_ACCESS_TOKEN",
        PAT_CANARY,
        "acme-xy12345",
    )
    assert "account 'acme-xy12345'" in message and "user 'SOPHIA_DAGSTER'" in message
    assert "with programmatic access token" in message and "Incorrect username or password" in message
    assert PAT_CANARY not in message


def test_a_secret_echoed_by_the_server_is_redacted() -> None:
    with fake_snowflake(message=f"password {PASSWORD_CANARY} was rejected") as fake:
        resource = snowflake_resource(cloud_settings(snowflake_password=PASSWORD_CANARY), fake_args(fake.port))
        message = connect_error(resource)
    assert fake.logins[0]["PASSWORD"] == PASSWORD_CANARY
    assert "with password" in message and "password ****** was rejected" in message
    assert PASSWORD_CANARY not in message


def test_key_pair_signs_a_jwt_for_the_account_user_and_key(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    key_path = tmp_path / "encrypted.p8"
    key_path.write_bytes(pem(rsa_key, PASSPHRASE_CANARY))
    settings = cloud_settings(snowflake_private_key_path=key_path, snowflake_private_key_passphrase=PASSPHRASE_CANARY)
    with fake_snowflake() as fake:
        message = connect_error(snowflake_resource(settings, fake_args(fake.port)))
    login = fake.logins[0]
    assert login["AUTHENTICATOR"] == "SNOWFLAKE_JWT"
    public_der = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = base64.b64encode(hashlib.sha256(public_der).digest()).decode()
    payload = json.loads(base64.urlsafe_b64decode(login["TOKEN"].split(".")[1] + "=="))
    assert payload["iss"] == f"ACME-XY12345.SOPHIA_DAGSTER.SHA256:{fingerprint}"
    assert payload["sub"] == "ACME-XY12345.SOPHIA_DAGSTER"
    assert "with key pair" in message and PASSPHRASE_CANARY not in message and "PRIVATE KEY" not in json.dumps(login)


def test_bad_key_material_names_the_setting(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    key_path = tmp_path / "encrypted.p8"
    key_path.write_bytes(pem(rsa_key, PASSPHRASE_CANARY))
    with pytest.raises(SnowflakeAuthError, match=r"SNOWFLAKE_PRIVATE_KEY_PATH \(.*encrypted.p8\) is encrypted"):
        snowflake_resource(cloud_settings(snowflake_private_key_path=key_path))
    with pytest.raises(SnowflakeAuthError, match="SNOWFLAKE_PRIVATE_KEY_PASSPHRASE does not decrypt it") as caught:
        snowflake_resource(
            cloud_settings(
                snowflake_private_key_path=key_path, snowflake_private_key_passphrase="wrong-" + PASSPHRASE_CANARY
            )
        )
    assert PASSPHRASE_CANARY not in str(caught.value)
    with pytest.raises(SnowflakeAuthError, match="SNOWFLAKE_PRIVATE_KEY is not a PEM private key"):
        snowflake_resource(cloud_settings(snowflake_private_key="not a key"))
    with pytest.raises(SnowflakeAuthError, match=r"SNOWFLAKE_PRIVATE_KEY_PATH \(.*missing.p8\) cannot be read"):
        snowflake_resource(cloud_settings(snowflake_private_key_path=tmp_path / "missing.p8"))


def test_cloud_resource_runs_queries_through_the_connector(snowflake: EmbeddedSnowflakeResource) -> None:
    """The dev/prod resource against a server that accepts the login: the embedded warehouse's endpoint."""
    endpoint = ensure_embedded_warehouse(Path(snowflake.state_dir))
    resource = snowflake_resource(cloud_settings(snowflake_pat=PAT_CANARY), fake_args(endpoint.port))
    with resource.get_connection() as conn:
        assert conn.cursor().execute("SELECT 40 + 2").fetchone()[0] == 42
