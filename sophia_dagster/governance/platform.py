"""Platform checks: secret hygiene over tracked files, the local.env file's protection, and code health
(forbidden imports, import cycles) read with the stdlib ``ast``. They judge the repository, not a table."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", ".sophia", "node_modules", ".pytest_cache", ".ruff_cache"}
# Passwords and assigned secrets must contain a digit: "password", "session-token" are placeholders, not secrets.
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]{0,5000}?-----END"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Slack webhook": re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"),
    "Pulumi token": re.compile(r"\bpul-[0-9a-f]{40}\b"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:(?=[^\s@/]*\d)[^\s@/'\"{}$<>*]{4,}@"),
    "assigned secret": re.compile(
        r"(?i)\b(?:password|passwd|secret|api_key|apikey|access_token|private_key|token)\b[\"']?\s*[:=]\s*"
        r"[\"'](?=[^\"'\s]*\d)[^\"'\s${}<>*]{12,}[\"']"
    ),
}


@dataclass(frozen=True)
class Finding:
    """Something wrong at a place in the repository; ``what`` never quotes a secret."""

    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def tracked_files(root: Path) -> list[Path]:
    """Files git tracks under ``root``; without git (or outside a repository) every file but caches and venvs."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=30
        ).stdout.decode()
        return [root / name for name in out.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        return [p for p in root.rglob("*") if p.is_file() and not SKIPPED_DIRS & set(p.relative_to(root).parts)]


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def scan_secrets(
    root: Path,
    files: Iterable[Path],
    allow_markers: Sequence[str] = (),
    allowed_values: Sequence[str] = (),
    max_bytes: int = 1_000_000,
) -> list[Finding]:
    """Credential-shaped strings in ``files``, by kind and place (the matched text is never reported).

    A match containing one of ``allow_markers`` (case-insensitive, e.g. ``canary`` for test fakes) or lying
    inside one of ``allowed_values`` (published, non-secret keys) is not a finding.
    """
    markers = [m.lower() for m in allow_markers]
    findings = []
    for path in files:
        try:
            if path.stat().st_size > max_bytes:
                continue
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        for kind, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                found = match.group(0)
                if any(m in found.lower() for m in markers) or any(found in v for v in allowed_values):
                    continue
                findings.append(Finding(str(path.relative_to(root)), _line_of(text, match.start()), kind))
    return findings


def local_env_findings(root: Path, tracked: Iterable[Path], name: str = "local.env") -> list[Finding]:
    """``local.env`` must not be tracked by git and, when present, not readable by other users."""
    path = root / name
    findings = []
    if path in set(tracked):
        findings.append(Finding(name, 0, "is tracked by git: remove it (git rm --cached) and rotate its secrets"))
    if path.exists() and path.stat().st_mode & 0o004:
        findings.append(Finding(name, 0, "is world-readable: chmod 600 it"))
    return findings


def _module_name(package_root: Path, path: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[int, str, bool]]:
    """``(line, imported module, at module level)`` for every import of a module."""
    package = module if is_package else module.rpartition(".")[0]
    type_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node)
        for child in node.body
        for n in ast.walk(child)
    }
    top_level = {id(n) for n in tree.body} | {
        id(n) for node in tree.body if isinstance(node, ast.If | ast.Try) for n in ast.walk(node)
    }
    for node in ast.walk(tree):
        level = id(node) in top_level and id(node) not in type_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, level
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield node.lineno, base, level
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}", level


@dataclass(frozen=True)
class CodeHealth:
    """Forbidden imports and import cycles of one package."""

    forbidden: list[Finding]
    cycles: list[list[str]]

    @property
    def passed(self) -> bool:
        return not self.forbidden and not self.cycles


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def code_health(package_root: Path, forbidden: Sequence[str]) -> CodeHealth:
    """Forbidden imports anywhere in the package, and cycles among its module-level imports.

    Args:
        package_root: the package directory (``sophia_dagster/``).
        forbidden: top-level module names that must not be imported (``requests`` where httpx is the rule).

    Example:
        >>> code_health(Path("sophia_dagster"), ["requests"]).passed
        True
    """
    repo = package_root.parent
    files = {
        p: _module_name(package_root, p) for p in sorted(package_root.rglob("*.py")) if not SKIPPED_DIRS & set(p.parts)
    }
    modules = set(files.values())
    graph: dict[str, set[str]] = {m: set() for m in modules}
    findings: dict[tuple[str, int, str], Finding] = {}
    for path, module in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, imported, top in _imports(tree, module, path.name == "__init__.py"):
            root_module = imported.split(".")[0]
            if root_module in forbidden:
                where = str(path.relative_to(repo))
                findings[(where, line, root_module)] = Finding(where, line, f"imports {root_module}")
            if top and imported in modules and imported != module:
                graph[module].add(imported)
    return CodeHealth(list(findings.values()), _cycles(graph))
