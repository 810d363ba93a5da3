"""The one place that builds the platform's `SnowflakeResource` from Settings.

`local` gets the embedded warehouse. `dev`/`prod` authenticate with, in this order of preference, a
programmatic access token (PAT), a key pair, or a password. A PAT is passed the way
snowflake-connector-python expects it: ``authenticator="PROGRAMMATIC_ACCESS_TOKEN"`` with the token in
``token`` (see ``snowflake/connector/auth/pat.py``).

Secrets never enter the resource's Dagster config (which the web UI displays): the resource names an
auth method, and the secret values are looked up in a process-local registry filled by
`snowflake_resource` when a connection is opened. A failed connection raises
`SnowflakeConnectionError` naming the account, the user and the auth method, with any secret redacted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import snowflake.connector
from cryptography.hazmat.primitives import serialization
from dagster_snowflake import SnowflakeResource
from pydantic import Field, SecretStr

from sophia_dagster.config import Settings
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource

PAT = "PROGRAMMATIC_ACCESS_TOKEN"
KEY_PAIR = "SNOWFLAKE_JWT"
PASSWORD = "SNOWFLAKE"
AUTH_METHOD_NAMES = {PAT: "programmatic access token", KEY_PAIR: "key pair", PASSWORD: "password"}
LOGIN_TIMEOUT_SECONDS = 60
NETWORK_TIMEOUT_SECONDS = 300


class SnowflakeAuthError(ValueError):
    """Settings that cannot authenticate to Snowflake; the message names the variables at fault."""


class SnowflakeConnectionError(ConnectionError):
    """A connection to Snowflake that failed; names account, user and auth method, never a secret."""


@dataclass(frozen=True)
class Credentials:
    """The secret half of a connection: what the connector needs for one auth method."""

    authenticator: str
    secret: SecretStr | None = None
    private_key: Any = None

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for `snowflake.connector.connect`."""
        if self.authenticator == PAT:
            return {"authenticator": PAT, "token": self.secret.get_secret_value()}
        if self.authenticator == KEY_PAIR:
            return {"authenticator": KEY_PAIR, "private_key": self.private_key}
        return {"authenticator": PASSWORD, "password": self.secret.get_secret_value()}

    def redact(self, text: str) -> str:
        """`text` with the secret value replaced, should a server or library echo it."""
        if self.secret is not None and self.secret.get_secret_value():
            text = text.replace(self.secret.get_secret_value(), "******")
        return text


_CREDENTIALS: dict[tuple[str, str, str], Credentials] = {}


class CloudSnowflakeResource(SnowflakeResource):
    """`SnowflakeResource` for a real Snowflake account whose secret stays out of the Dagster config."""

    auth_method: str = Field(description="Which credentials authenticate: " + ", ".join(AUTH_METHOD_NAMES.values()))

    def _credentials(self) -> Credentials:
        key = (self.account or "", self.user, self.authenticator or "")
        if key not in _CREDENTIALS:
            raise SnowflakeAuthError(
                f"no {self.auth_method} credentials loaded for Snowflake account '{self.account}' user "
                f"'{self.user}': build the resource with sophia_dagster.warehouse.resources.snowflake_resource"
            )
        return _CREDENTIALS[key]

    @property
    def _connection_args(self) -> Mapping[str, Any]:
        return {**super()._connection_args, **self._credentials().connect_args()}

    @contextmanager
    def get_connection(self, raw_conn: bool = True) -> Iterator[Any]:
        """A connector connection; a failure to connect names the account and auth method only."""
        with ExitStack() as stack:
            try:
                conn = stack.enter_context(super().get_connection(raw_conn))
            except snowflake.connector.errors.Error as exc:
                reason = self._credentials().redact(str(exc.msg or exc))
                raise SnowflakeConnectionError(
                    f"cannot connect to Snowflake account '{self.account}' as user '{self.user}' "
                    f"with {self.auth_method}: {reason}"
                ) from None
            yield conn


def credentials_from_settings(settings: Settings) -> Credentials:
    """The preferred credentials the settings hold: PAT, then key pair, then password."""
    if settings.snowflake_pat:
        return Credentials(PAT, secret=settings.snowflake_pat)
    if settings.snowflake_private_key or settings.snowflake_private_key_path:
        return Credentials(KEY_PAIR, secret=settings.snowflake_private_key_passphrase, private_key=_load_key(settings))
    if settings.snowflake_password:
        return Credentials(PASSWORD, secret=settings.snowflake_password)
    raise SnowflakeAuthError(
        f"ENVIRONMENT={settings.environment} needs Snowflake credentials: set one of SNOWFLAKE_PAT, "
        "SNOWFLAKE_PRIVATE_KEY, SNOWFLAKE_PRIVATE_KEY_PATH or SNOWFLAKE_PASSWORD"
    )


def _load_key(settings: Settings) -> Any:
    """The private key object, read from SNOWFLAKE_PRIVATE_KEY or the file SNOWFLAKE_PRIVATE_KEY_PATH."""
    if settings.snowflake_private_key:
        source, pem = "SNOWFLAKE_PRIVATE_KEY", settings.snowflake_private_key.get_secret_value().encode()
    else:
        path = settings.snowflake_private_key_path
        source = f"SNOWFLAKE_PRIVATE_KEY_PATH ({path})"
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise SnowflakeAuthError(f"{source} cannot be read: {exc.strerror}") from None
    passphrase = settings.snowflake_private_key_passphrase
    try:
        return serialization.load_pem_private_key(
            pem, password=passphrase.get_secret_value().encode() if passphrase else None
        )
    except TypeError:
        raise SnowflakeAuthError(
            f"{source} is encrypted: set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"
            if passphrase is None
            else f"{source} is not encrypted: unset SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"
        ) from None
    except ValueError:
        raise SnowflakeAuthError(
            f"{source} is not a PEM private key, or SNOWFLAKE_PRIVATE_KEY_PASSPHRASE does not decrypt it"
        ) from None


def snowflake_resource(settings: Settings, connection_args: Mapping[str, Any] | None = None) -> SnowflakeResource:
    """The warehouse resource for `settings.environment`: embedded in local, Snowflake in dev/prod.

    `connection_args` are extra connector arguments for dev/prod (e.g. ``host`` for a private link).
    Nothing connects here; secrets are checked (a key pair is decrypted) so bad ones fail at load.
    """
    if settings.environment == "local":
        return embedded_snowflake_resource(
            settings.state_dir, database=settings.snowflake_database, schema=settings.snowflake_schema
        )
    if not settings.snowflake_account or not settings.snowflake_user:
        raise SnowflakeAuthError(f"ENVIRONMENT={settings.environment} needs SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER")
    credentials = credentials_from_settings(settings)
    _CREDENTIALS[(settings.snowflake_account, settings.snowflake_user, credentials.authenticator)] = credentials
    return CloudSnowflakeResource(
        account=settings.snowflake_account,
        user=settings.snowflake_user,
        authenticator=credentials.authenticator,
        auth_method=AUTH_METHOD_NAMES[credentials.authenticator],
        role=settings.snowflake_role,
        warehouse=settings.snowflake_warehouse,
        database=settings.snowflake_database,
        schema=settings.snowflake_schema,
        login_timeout=LOGIN_TIMEOUT_SECONDS,
        network_timeout=NETWORK_TIMEOUT_SECONDS,
        additional_snowflake_connection_args=dict(connection_args or {}),
    )
