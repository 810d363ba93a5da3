"""Endpoint configs are encrypted by Estuary's config-encryption service before they are staged in a draft."""

from __future__ import annotations

import copy
from typing import Any

from sophia_dagster.estuary.errors import EstuaryError
from sophia_dagster.estuary.http import EstuaryHttp
from sophia_dagster.estuary.postgrest import PostgRest
from sophia_dagster.estuary.publication import DraftSpec


class ConfigEncryptor:
    """Encrypts connector configs with the connector tag's endpoint schema (schemas are read once per image)."""

    def __init__(self, http: EstuaryHttp, pg: PostgRest, encryption_url: str) -> None:
        self.http, self.pg, self.url = http, pg, encryption_url.rstrip("/")
        self._schemas: dict[str, dict[str, Any]] = {}

    def encrypt_config(self, image: str, config: dict[str, Any]) -> dict[str, Any]:
        """Encrypt an endpoint config; configs already in a ``sops`` envelope pass through."""
        if "sops" in config:
            return config
        body = {"config": config, "schema": self._endpoint_schema(image)}
        return self.http.request("POST", f"{self.url}/v1/encrypt-config", json=body).json()

    def _endpoint_schema(self, image: str) -> dict[str, Any]:
        if image not in self._schemas:
            name, tag = image.rsplit(":", 1)
            connectors = self.pg.request(
                "GET", "connectors", params={"image_name": f"eq.{name}", "select": "id"}
            ).json()
            if not connectors:
                raise EstuaryError(f"connector image {name} is not known to Estuary")
            params = {
                "connector_id": f"eq.{connectors[0]['id']}",
                "image_tag": f"eq.:{tag}",
                "select": "endpoint_spec_schema",
            }
            tags = self.pg.request("GET", "connector_tags", params=params).json()
            if not tags:
                raise EstuaryError(f"connector image {image} has no tag :{tag} in Estuary")
            self._schemas[image] = tags[0]["endpoint_spec_schema"]
        return self._schemas[image]

    def encrypted(self, draft: DraftSpec) -> DraftSpec:
        """The draft with its connector config encrypted (drafts without one are returned as they are)."""
        connector = ((draft.spec or {}).get("endpoint") or {}).get("connector")
        if not connector or not isinstance(connector.get("config"), dict):
            return draft
        spec = copy.deepcopy(draft.spec)
        spec["endpoint"]["connector"]["config"] = self.encrypt_config(connector["image"], connector["config"])
        return draft._replace(spec=spec)
