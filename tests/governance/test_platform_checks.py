"""Platform checks on a throwaway repository: secret hygiene, local.env protection, forbidden imports, cycles."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sophia_dagster.governance import platform
from sophia_dagster.governance.config import GovernanceConfig
from sophia_dagster.governance.platform_checks import code_health, secret_hygiene

# Assembled at run time so this file itself holds no credential-shaped string.
AWS_KEY = "AKIA" + "Q3EGRIKCA7KFQVHZ"


def _repo(root: Path) -> Path:
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / "models").mkdir()
    (root / "models" / "clean.sql").write_text("SELECT 1;\n")
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    return root


def test_a_credential_in_a_sql_file_fails_hygiene_naming_file_and_line(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    config = GovernanceConfig()
    assert secret_hygiene(root, config).passed
    leaked = root / "models" / "load.sql"
    leaked.write_text(f"-- loader\nCOPY INTO t FROM 's3://bucket' CREDENTIALS = (AWS_KEY_ID = '{AWS_KEY}');\n")
    subprocess.run(["git", "add", "models/load.sql"], cwd=root, check=True)
    failed = secret_hygiene(root, config)
    assert not failed.passed
    assert failed.metadata["problems"].value == ["models/load.sql:2: AWS access key"]
    assert AWS_KEY not in str(failed.metadata) and AWS_KEY not in (failed.description or "")
    leaked.write_text("COPY INTO t FROM @stage;\n")
    assert secret_hygiene(root, config).passed


def test_passwords_in_urls_and_assignments_are_found_but_placeholders_and_canaries_are_not(tmp_path: Path) -> None:
    root = tmp_path
    (root / "a.py").write_text(
        'DSN = "postgresql://app:' + 'hunter2x9@db/x"\n'
        'password = "' + 'Zq8sLr2mVw4xTt"\n'
        'EXAMPLE = "postgresql://user:password@host/db"\n'
        'FAKE = "postgresql://app:canary-pw-1@db/x"\n'
        'TEMPLATE = "postgresql://app:${PG_PASSWORD}@db/x"\n'
    )
    found = platform.scan_secrets(root, [root / "a.py"], ("canary",))
    assert [str(f) for f in found] == ["a.py:1: password in a URL", "a.py:2: assigned secret"]


def test_local_env_must_be_untracked_and_private(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    env = root / "local.env"
    env.write_text("SNOWFLAKE_PASSWORD=x\n")
    env.chmod(0o644)
    subprocess.run(["git", "add", "local.env"], cwd=root, check=True)
    failed = secret_hygiene(root, GovernanceConfig())
    assert failed.metadata["problems"].value == [
        "local.env:0: is tracked by git: remove it (git rm --cached) and rotate its secrets",
        "local.env:0: is world-readable: chmod 600 it",
    ]
    subprocess.run(["git", "rm", "-q", "--cached", "local.env"], cwd=root, check=True)
    env.chmod(0o600)
    assert secret_hygiene(root, GovernanceConfig()).passed


def test_without_git_every_file_but_caches_is_scanned(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x.py").write_text("x = 1\n")
    (tmp_path / "b.sql").write_text("SELECT 1;\n")
    assert platform.tracked_files(tmp_path) == [tmp_path / "b.sql"]


def test_forbidden_imports_and_import_cycles_are_named(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("import requests.adapters\nfrom pkg.a import thing\n")
    (package / "c.py").write_text("def later():\n    from pkg import a\n")
    failed = code_health(tmp_path, package, GovernanceConfig())
    assert failed.metadata["problems"].value == ["pkg/b.py:1: imports requests", "import cycle: pkg.a -> pkg.b"]
    (package / "b.py").write_text("import httpx\n\ndef late():\n    from pkg.a import thing\n")
    assert code_health(tmp_path, package, GovernanceConfig()).passed


def test_the_platform_itself_passes_its_code_and_hygiene_checks() -> None:
    import sophia_dagster

    package = Path(sophia_dagster.__file__).parent
    assert code_health(package.parent, package, GovernanceConfig()).passed
    result = secret_hygiene(package.parent, GovernanceConfig())
    assert result.passed, result.metadata["problems"].value
