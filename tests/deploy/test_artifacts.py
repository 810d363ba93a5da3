"""The image and chart values, checked statically: Docker cannot pull a base image here and `helm` is not
installable from the registries this machine reaches, so neither is built nor rendered.

The Dockerfile is parsed (dockerfile-parse); the Helm values are validated with jsonschema against the
parts of Dagster's chart schema they use (the `dagster-user-deployments` subchart's UserDeployment, and
the Kubernetes shapes it references), transcribed below because the chart itself cannot be fetched.
"""

import json
import re

import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.deploy.conftest import DEPLOY, REPO

READINESS = ["dagster", "api", "grpc-health-check", "-p", "4000"]
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|PRIVATE|_KEY|DSN|CREDENTIAL|WEBHOOK", re.IGNORECASE)
STRINGS = {"type": "array", "items": {"type": "string"}}
PROBE = {  # io.k8s.api.core.v1.Probe with the chart's `enabled` flag
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "exec": {
            "type": "object",
            "properties": {"command": STRINGS},
            "required": ["command"],
            "additionalProperties": False,
        },
        **{
            k: {"type": "integer", "minimum": 1}
            for k in ("periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold", "initialDelaySeconds")
        },
    },
    "additionalProperties": False,
}
USER_DEPLOYMENT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "image": {
            "type": "object",
            "properties": {
                "repository": {"type": "string"},
                "tag": {"type": ["string", "integer", "null"]},
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
            "required": ["repository", "pullPolicy"],
            "additionalProperties": False,
        },
        "codeServerArgs": STRINGS,
        "dagsterApiGrpcArgs": STRINGS,
        "port": {"type": "integer"},
        "env": {
            "anyOf": [
                {"type": "object", "additionalProperties": {"type": "string"}},
                {"type": "array", "items": {"type": "object", "required": ["name"]}},
            ]
        },
        "envConfigMaps": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "envSecrets": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        },
        "readinessProbe": PROBE,
        "livenessProbe": PROBE,
        "startupProbe": PROBE,
        "resources": {
            "type": "object",
            "properties": {"requests": {"type": "object"}, "limits": {"type": "object"}},
            "additionalProperties": False,
        },
        "podSecurityContext": {"type": "object"},
        "securityContext": {"type": "object"},
        "includeConfigInLaunchedRuns": {
            "type": "object",
            "properties": {"enabled": {"type": "boolean"}},
            "required": ["enabled"],
        },
    },
    "required": ["name", "image", "port"],
    "additionalProperties": False,
}
VALUES = {
    "type": "object",
    "properties": {
        "dagster-user-deployments": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "enableSubchart": {"type": "boolean"},
                "deployments": {"type": "array", "items": USER_DEPLOYMENT, "minItems": 1},
            },
            "required": ["enabled", "deployments"],
        },
        "postgresql": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "postgresqlHost": {"type": "string"},
                "postgresqlUsername": {"type": "string"},
                "postgresqlDatabase": {"type": "string"},
                "service": {"type": "object", "properties": {"port": {"type": "integer"}}},
            },
        },
        "generatePostgresqlPasswordSecret": {"type": "boolean"},
        "global": {"type": "object", "properties": {"postgresqlSecretName": {"type": "string"}}},
    },
    "required": ["dagster-user-deployments", "postgresql", "global"],
}


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(fileobj=(DEPLOY / "Dockerfile").open("rb"))


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((DEPLOY / "helm-values.yaml").read_text())


def _final_stage(parser: DockerfileParser) -> list[dict]:
    last_from = max(i for i, entry in enumerate(parser.structure) if entry["instruction"] == "FROM")
    return parser.structure[last_from:]


def test_the_image_runs_as_a_non_root_user(dockerfile: DockerfileParser) -> None:
    users = [entry["value"] for entry in _final_stage(dockerfile) if entry["instruction"] == "USER"]
    assert users, "the final stage sets no USER: the code server would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_no_secret_is_baked_into_a_layer(dockerfile: DockerfileParser) -> None:
    names = [
        name
        for entry in dockerfile.structure
        if entry["instruction"] in ("ENV", "ARG")
        for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", entry["value"]) or [entry["value"].split()[0]]
    ]
    assert names and not [name for name in names if SECRET_NAME.search(name)]
    copied = [
        entry["value"].split()[-2]
        for entry in dockerfile.structure
        if entry["instruction"] == "COPY" and "--from" not in entry["value"]
    ]
    assert all((REPO / source).exists() for source in copied), copied
    assert not [source for source in copied if SECRET_NAME.search(source) or source.endswith(".env")]


def test_the_build_context_excludes_state_and_secrets() -> None:
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "the context must start from nothing and allow only what the image needs"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "sophia_dagster", "deploy/dagster.yaml"}
    assert not {"local.env", ".sophia", ".venv", "sophia.toml", ".git"} & allowed


def test_the_image_serves_the_code_location_and_checks_its_health(dockerfile: DockerfileParser) -> None:
    command = json.loads(dockerfile.cmd) if dockerfile.cmd.startswith("[") else dockerfile.cmd.split()
    assert command[:3] == ["dagster", "code-server", "start"]
    assert command[command.index("-m") + 1] == "sophia_dagster.definitions"
    assert command[command.index("-p") + 1] == "4000"
    healthcheck = next(entry["value"] for entry in dockerfile.structure if entry["instruction"] == "HEALTHCHECK")
    assert json.loads(healthcheck[healthcheck.index("[") :]) == READINESS
    home = dockerfile.envs["DAGSTER_HOME"]
    assert any(entry["value"] == f"deploy/dagster.yaml {home}/dagster.yaml" for entry in dockerfile.structure)


def test_helm_values_match_the_charts_schema(values: dict) -> None:
    jsonschema.validate(values, VALUES)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["-m", "sophia_dagster.definitions"]
    assert deployment["readinessProbe"]["exec"]["command"] == READINESS
    assert deployment["port"] == 4000 and deployment["podSecurityContext"]["runAsNonRoot"]


def test_helm_values_take_every_secret_from_kubernetes_secrets(values: dict) -> None:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["envSecrets"] == [{"name": "sophia-dagster-env"}]
    assert values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"] == deployment["envSecrets"]
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]
    assert "postgresqlPassword" not in values["postgresql"]
    assert not list(_literal_secrets(values))


def _literal_secrets(node: object, path: str = "") -> list[str]:
    """Paths of string values under a key that names a password, token or key (secret *names* are fine)."""
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in _literal_secrets(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [found for i, value in enumerate(node) for found in _literal_secrets(value, f"{path}[{i}]")]
    leaf = path.rsplit(".", 1)[-1]
    return [path] if isinstance(node, str) and re.search(r"(?i)password|token|_key$", leaf) else []


def test_a_schema_violation_is_caught(values: dict) -> None:
    """The schema would notice a typo: a misspelt key and a probe command that is not a list."""
    broken = json.loads(json.dumps(values))
    broken["dagster-user-deployments"]["deployments"][0]["codeServerArg"] = ["-m", "x"]
    with pytest.raises(jsonschema.ValidationError, match="codeServerArg"):
        jsonschema.validate(broken, VALUES)
    broken = json.loads(json.dumps(values))
    broken["dagster-user-deployments"]["deployments"][0]["readinessProbe"]["exec"]["command"] = "dagster api"
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'array'"):
        jsonschema.validate(broken, VALUES)
    assert _literal_secrets({"postgresql": {"postgresqlPassword": "hunter2"}}) == [".postgresql.postgresqlPassword"]
