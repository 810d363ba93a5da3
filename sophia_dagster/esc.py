"""Pulumi ESC: open an environment over its HTTP API and read its `environmentVariables`."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr


class EscError(RuntimeError):
    """Pulumi ESC could not be read; the message names the environment, never the token."""


def _plain(value: Any) -> Any:
    """An ESC `Value` tree (`{"value": ..., "secret": ..., "trace": ...}`) as plain JSON."""
    if isinstance(value, dict) and "value" in value:
        inner = value["value"]
        if isinstance(inner, dict):
            return {key: _plain(item) for key, item in inner.items()}
        if isinstance(inner, list):
            return [_plain(item) for item in inner]
        return inner
    return value


def open_esc_environment(
    *, api_url: str, org: str, project: str, environment: str, token: SecretStr | None, timeout: float
) -> dict[str, str]:
    """The `environmentVariables` of an opened ESC environment, as name -> string value."""
    name = f"{org}/{project}/{environment}"
    if token is None:
        raise EscError(f"environment {name}: PULUMI_ACCESS_TOKEN is not set")
    base = f"{api_url.rstrip('/')}/api/esc/environments/{org}/{project}/{environment}/open"
    headers = {"Authorization": f"token {token.get_secret_value()}", "Accept": "application/json"}
    try:
        with httpx.Client(timeout=timeout, headers=headers) as client:
            opened = client.post(base, params={"duration": "5m"})
            opened.raise_for_status()
            session = opened.json()["id"]
            values = client.get(f"{base}/{session}")
            values.raise_for_status()
            properties = values.json().get("properties") or {}
    except httpx.HTTPStatusError as exc:
        raise EscError(f"environment {name}: HTTP {exc.response.status_code} from {exc.request.url.path}") from None
    except (httpx.HTTPError, ValueError, KeyError, AttributeError) as exc:
        raise EscError(f"environment {name}: {type(exc).__name__} talking to {api_url}") from None
    variables = _plain(properties.get("environmentVariables", {})) if isinstance(properties, dict) else None
    if not isinstance(variables, dict):
        raise EscError(f"environment {name}: environmentVariables is not an object")
    return {key: value if isinstance(value, str) else str(value) for key, value in variables.items()}
