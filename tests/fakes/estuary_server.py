"""A fake Estuary control plane: a real local HTTP server reproducing the shapes of Estuary's APIs.

One server answers the three surfaces: PostgREST under ``/rest/v1``, the agent API under ``/api/v1`` and
the config-encryption service under ``/encryption``. It keeps live specs (with the ``md5`` of their JSON text),
drafts, publications (with the ``queued`` -> final ``job_status`` lifecycle), the publication history
(``publication_specs_ext``), draft errors, status and hourly stats in memory; prunes draft specs identical to
their live spec (``rpc/prune_unchanged_draft_specs``); serves files under ``/files/`` (schemas given by URL);
and can inject faults: 429 with ``Retry-After``, 500/503, slow answers, dropped connections, concurrent
changes. Every request is logged so tests can count them.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ANON_KEY = "fake-anon-key"
ZERO_PUB_ID = "00:00:00:00:00:00:00:00"
PLATFORM_CONNECTORS = (
    "ghcr.io/estuary/source-postgres:v3",
    "ghcr.io/estuary/source-hubspot-native:v1",
    "ghcr.io/estuary/materialize-snowflake:v4",
)
CLIENT_ERRORS = {
    "400": {"code": "PGRST102", "message": "Empty or invalid json", "details": None, "hint": None},
    "403": {"code": "42501", "message": "permission denied for table drafts", "details": None, "hint": None},
    "404": {
        "code": "PGRST205",
        "message": "Could not find the table 'public.drafts' in the schema cache",
        "details": None,
        "hint": "Perhaps you meant the table 'public.draft_specs'",
    },
}
STAT_COUNTERS = (
    "docs_written_by_me",
    "bytes_written_by_me",
    "docs_read_by_me",
    "bytes_read_by_me",
    "docs_written_to_me",
    "bytes_written_to_me",
    "docs_read_from_me",
    "bytes_read_from_me",
    "warnings",
    "errors",
    "failures",
    "usage_seconds",
)


def spec_md5(spec: Any) -> str | None:
    """``md5(trim(spec::text))`` as Estuary computes it: the hash of the spec's JSON text as it was sent."""
    return None if spec is None else hashlib.md5(json.dumps(spec, separators=(",", ":")).encode()).hexdigest()


def task_shards(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The shard template of a task spec (``derive.shards`` for a derivation)."""
    spec = spec or {}
    holder = spec.get("derive") if isinstance(spec.get("derive"), dict) else spec
    return holder.get("shards") or {}


def flow_id(n: int) -> str:
    """A flowid (macaddr8 text, as PostgREST renders Estuary ids)."""
    return ":".join(f"{b:02x}" for b in (0x0E8E17D04FAC0000 + n).to_bytes(8, "big"))


def make_refresh_token(token_id: str, secret: str) -> str:
    """A refresh token as the dashboard hands it out: base64 of ``{"id", "secret"}``."""
    return base64.b64encode(json.dumps({"id": token_id, "secret": secret}).encode()).decode()


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class HttpError(Exception):
    """An error answer: status, body (dict for JSON, str for plain text) and extra headers."""

    def __init__(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def pg_error(status: int, code: str, message: str, details: str | None = None, hint: str | None = None) -> HttpError:
    """A PostgREST error body ``{code, message, details, hint}``."""
    return HttpError(status, {"code": code, "message": message, "details": details, "hint": hint})


@dataclass
class Logged:
    """One request as the server saw it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: str
    status: int = 0


@dataclass
class Fault:
    """An injected failure: '429', '500', '503', '307' (redirect to the same URL), 'drop', 'slow', 'echo-auth'
    (a 403 quoting the Authorization header back), or a PostgREST client error from ``CLIENT_ERRORS``."""

    kind: str
    retry_after: str | None = None
    path: str | None = None
    method: str | None = None


@dataclass
class Publication:
    """A publication row and how many more polls it stays queued."""

    id: str
    draft_id: str
    dry_run: bool
    logs_token: str
    queued_polls: int
    detail: str = ""
    job_status: dict[str, Any] = field(default_factory=lambda: {"type": "queued"})


def matches(value: Any, condition: str) -> bool:
    """Evaluate a PostgREST filter (eq, in, like, gte, not.is.null) against one column value."""
    op, _, arg = condition.partition(".")
    if op == "eq":
        return str(value) == arg
    if op == "in":
        return str(value) in {item.strip('"') for item in arg.strip("()").split(",")}
    if op == "like":
        return str(value).startswith(arg.replace("*", "%").split("%")[0].strip('"'))
    if op == "gte":
        return value >= datetime.fromisoformat(arg) if isinstance(value, datetime) else str(value) >= arg
    if condition == "not.is.null":
        return value is not None
    raise pg_error(400, "PGRST100", f'"failed to parse filter ({condition})" (line 1, column 1)')


def where(rows: list[dict[str, Any]], filters: dict[str, str]) -> list[dict[str, Any]]:
    """The rows matching every PostgREST filter."""
    return [r for r in rows if all(matches(r.get(k), v) for k, v in filters.items())]


class FakeEstuary:
    """The control plane's state and behaviour; start it with :meth:`start` (or use as a context manager)."""

    def __init__(self, *, token_ttl_seconds: float = 3600.0, queued_polls: int = 1) -> None:
        self.lock = threading.RLock()
        self.token_ttl = token_ttl_seconds
        self.queued_polls = queued_polls
        self.ids = itertools.count(1)
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.jwts: dict[str, float] = {}
        self.connectors: dict[str, dict[str, Any]] = {}
        self.live: dict[str, dict[str, Any]] = {}
        self.drafts: dict[str, dict[str, dict[str, Any]]] = {}
        self.draft_rows: dict[str, dict[str, Any]] = {}
        self.draft_errors: dict[str, list[dict[str, str]]] = {}
        self.publications: dict[str, Publication] = {}
        self.history: list[dict[str, Any]] = []
        self.files: dict[str, str] = {}
        self.status_override: dict[str, tuple[str, str]] = {}
        self.forbidden: set[str] = set()
        self.stats_rows: list[dict[str, Any]] = []
        self.plaintext_configs: list[dict[str, Any]] = []
        self.vault: dict[str, Any] = {}
        self.requests: list[Logged] = []
        self.scripted: deque[Fault] = deque()
        self.fault_rate, self.fault_kinds, self.rng = 0.0, ("429", "500", "503", "drop"), random.Random(0)
        self.slow_seconds = 1.0
        self.latency_seconds = 0.0
        self.concurrent_change: str | None = None
        self.mismatch_status = "buildFailed"
        self.connector_error: str | None = None
        for image in PLATFORM_CONNECTORS:
            self.add_connector(image)
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeEstuary:
        """Serve on a free port of 127.0.0.1 in a background thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-estuary", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeEstuary:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def urls(self) -> dict[str, str]:
        """Base URLs of the three surfaces, keyed like the client's constructor arguments."""
        return {
            "pg_url": f"{self.base_url}/rest/v1",
            "agent_url": self.base_url,
            "encryption_url": f"{self.base_url}/encryption",
            "anon_key": ANON_KEY,
        }

    # ---- test controls -------------------------------------------------------------------
    def issue_refresh_token(self, *, single_use: bool = False) -> str:
        """Register a refresh token and return it in its base64 form."""
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(24)
        self.refresh_tokens[token_id] = {"secret": secret, "single_use": single_use}
        return make_refresh_token(token_id, secret)

    def issue_access_token(self) -> str:
        """Mint an access JWT valid for ``token_ttl`` seconds."""
        expires = time.time() + self.token_ttl
        jwt = ".".join(
            [
                _b64url({"alg": "HS256", "typ": "JWT"}),
                _b64url({"sub": "user", "role": "authenticated", "exp": int(expires)}),
                secrets.token_urlsafe(16),
            ]
        )
        self.jwts[jwt] = expires
        return jwt

    def add_connector(self, image: str) -> None:
        """Make a connector image (with tag) known, with a minimal endpoint spec schema."""
        name, tag = image.rsplit(":", 1)
        connector = self.connectors.setdefault(name, {"id": flow_id(next(self.ids)), "tags": {}})
        connector["tags"][f":{tag}"] = {"type": "object", "properties": {}, "x-connector": name}

    def fail_builds_with(self, template: str) -> None:
        """Make connector validation fail with a message formatted from the decrypted config, e.g.
        ``"password authentication failed for {user} ({credentials_password})"`` (connectors do echo config)."""
        self.connector_error = template

    def fail_next(
        self,
        kind: str,
        count: int = 1,
        *,
        retry_after: str | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Script ``count`` faults for the next matching requests (``path`` is a substring filter)."""
        self.scripted.extend(Fault(kind, retry_after, path, method) for _ in range(count))

    def random_faults(
        self, rate: float, *, kinds: tuple[str, ...] = ("429", "500", "503", "drop"), seed: int = 0
    ) -> None:
        """Fail a ``rate`` fraction of requests with a random transient fault."""
        self.fault_rate, self.fault_kinds, self.rng = rate, kinds, random.Random(seed)

    def set_status(self, name: str, status: str, message: str = "") -> None:
        """Force the controller status of a spec (e.g. 'warning', 'error')."""
        self.status_override[name] = (status, message)

    def add_live(self, name: str, spec_type: str, spec: dict[str, Any] | None, detail: str = "dashboard") -> str:
        """Create or replace a live spec as if someone else published it; returns the new pub id."""
        with self.lock:
            pub_id = flow_id(next(self.ids))
            self._set_live(name, spec_type, spec, pub_id, detail)
            return pub_id

    def pause_live(self, name: str) -> str:
        """Pause a live task as an operator would in the dashboard (``shards.disable: true``); returns the pub id."""
        with self.lock:
            live = self.live[name]
            spec = json.loads(json.dumps(live["spec"]))
            holder = spec["derive"] if isinstance(spec.get("derive"), dict) else spec
            holder.setdefault("shards", {})["disable"] = True
            return self.add_live(name, live["spec_type"], spec, detail=f"paused {name} in the dashboard")

    def publications_made(self) -> int:
        """How many publications were requested (``POST /publications``)."""
        return self.count("POST", "/rest/v1/publications")

    def add_stats(
        self, name: str, ts: datetime, bindings: dict[str, tuple[int, int]] | None = None, **counters: int
    ) -> None:
        """Add (or add to) an hourly stats row; ``bindings`` maps collection -> (docs, bytes)."""
        with self.lock:
            row = next((r for r in self.stats_rows if r["catalog_name"] == name and r["ts"] == ts), None)
            if row is None:
                row = {
                    "catalog_name": name,
                    "grain": "hourly",
                    "ts": ts,
                    **dict.fromkeys(STAT_COUNTERS, 0),
                    "flow_document": {"catalogName": name, "grain": "hourly", "ts": ts.isoformat(), "taskStats": {}},
                }
                self.stats_rows.append(row)
            for key, value in counters.items():
                row[key] += value
            kind = "materialize" if self.live.get(name, {}).get("spec_type") == "materialization" else "capture"
            per_binding = row["flow_document"]["taskStats"].setdefault(kind, {})
            for collection, (docs, size) in (bindings or {}).items():
                out = per_binding.setdefault(collection, {"out": {"docsTotal": 0, "bytesTotal": 0}})["out"]
                out["docsTotal"] += docs
                out["bytesTotal"] += size

    def count(self, method: str | None = None, path: str = "") -> int:
        """How many logged requests match a method and a path substring."""
        return sum(1 for r in self.requests if (method is None or r.method == method) and path in r.path)

    # ---- request plumbing ----------------------------------------------------------------
    def next_fault(self, path: str, method: str = "") -> Fault | None:
        """The fault to apply to this request, if any."""
        with self.lock:
            head = self.scripted[0] if self.scripted else None
            if head and (head.path is None or head.path in path) and (head.method in (None, method)):
                return self.scripted.popleft()
            if self.fault_rate and self.rng.random() < self.fault_rate:
                kind = self.rng.choice(self.fault_kinds)
                return Fault(kind, "0.01" if kind == "429" else None)
        return None

    def dispatch(
        self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        """Route one request; returns (status, JSON-able body, headers)."""
        if path.startswith("/rest/v1/"):
            return self._postgrest(method, path.removeprefix("/rest/v1/"), query, headers, body)
        if path == "/api/v1/catalog/status" and method == "GET":
            self._agent_auth(headers)
            return 200, self._status([v for k, v in query if k == "name"]), {}
        if path == "/encryption/v1/encrypt-config" and method == "POST":
            return 200, self._encrypt(body), {}
        if path.startswith("/files/") and method == "GET" and path.removeprefix("/files/") in self.files:
            return 200, self.files[path.removeprefix("/files/")], {}
        raise HttpError(404, f"no route for {method} {path}")

    def _postgrest(
        self, method: str, table: str, query: list[tuple[str, str]], headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if headers.get("apikey") != ANON_KEY:
            raise HttpError(
                401,
                {
                    "message": "No API key found in request",
                    "hint": "No `apikey` request header or url param was found.",
                },
            )
        if table == "rpc/generate_access_token":
            return 200, self._generate_access_token(body), {}
        self._pg_auth(headers)
        filters = {k: v for k, v in query if k not in {"select", "order", "on_conflict"}}
        handler = getattr(self, f"_{method.lower()}_{table.replace('/', '_')}", None)
        if handler is None:
            raise pg_error(404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache")
        result = handler(filters, body) if method in {"POST", "PATCH"} else handler(filters)
        if method == "GET":
            return self._ranged(result, headers)
        single = "vnd.pgrst.object" in headers.get("accept", "")
        return (201 if method == "POST" else 204), (result[0] if single and result else result), {}

    @staticmethod
    def _ranged(rows: list[dict[str, Any]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        first, _, last = headers.get("range", f"0-{max(len(rows) - 1, 0)}").partition("-")
        page = rows[int(first) : int(last) + 1]
        end = int(first) + len(page) - 1
        return 200, page, {"Content-Range": f"{first}-{end}/*" if page else "*/0"}

    # ---- auth ------------------------------------------------------------------------------
    def _generate_access_token(self, body: dict[str, Any]) -> dict[str, Any]:
        token = self.refresh_tokens.get(str((body or {}).get("refresh_token_id")))
        if token is None or token["secret"] != (body or {}).get("secret"):
            raise pg_error(400, "P0001", "invalid secret provided")
        answer: dict[str, Any] = {"access_token": self.issue_access_token()}
        if token["single_use"]:
            del self.refresh_tokens[str(body["refresh_token_id"])]
            new_id, new_secret = secrets.token_hex(8), secrets.token_urlsafe(24)
            self.refresh_tokens[new_id] = {"secret": new_secret, "single_use": True}
            answer["refresh_token"] = {"id": new_id, "secret": new_secret}
        return answer

    def _valid_jwt(self, headers: dict[str, str]) -> bool:
        jwt = headers.get("authorization", "").removeprefix("Bearer ")
        return self.jwts.get(jwt, 0) > time.time()

    def _pg_auth(self, headers: dict[str, str]) -> None:
        if not self._valid_jwt(headers):
            raise pg_error(401, "PGRST301", "JWT expired")

    def _agent_auth(self, headers: dict[str, str]) -> None:
        if not self._valid_jwt(headers):
            raise HttpError(401, "invalid, expired, or unknown credential")

    # ---- tables ----------------------------------------------------------------------------
    def _get_live_specs_ext(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return where(sorted(self.live.values(), key=lambda r: r["catalog_name"]), filters)

    def _get_publication_specs_ext(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return where(self.history, filters)

    def _post_rpc_prune_unchanged_draft_specs(
        self, filters: dict[str, str], body: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Delete the draft's specs whose JSON text hashes like their live spec's; return what was pruned."""
        draft = self.drafts.get(str((body or {}).get("prune_draft_id")))
        if draft is None:
            return []
        pruned = []
        for name, row in list(draft.items()):
            live_md5 = self.live.get(name, {}).get("md5")
            if live_md5 is not None and live_md5 == spec_md5(row.get("spec")):
                del draft[name]
                pruned.append(
                    {
                        "catalog_name": name,
                        "spec_type": row["spec_type"],
                        "live_spec_md5": live_md5,
                        "draft_spec_md5": live_md5,
                        "inferred_schema_md5": None,
                        "live_inferred_schema_md5": None,
                    }
                )
        return pruned

    def _get_connectors(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return where([{"id": c["id"], "image_name": name} for name, c in self.connectors.items()], filters)

    def _get_connector_tags(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        rows = [
            {"connector_id": c["id"], "image_tag": tag, "endpoint_spec_schema": schema}
            for c in self.connectors.values()
            for tag, schema in c["tags"].items()
        ]
        return where(rows, filters)

    def _post_drafts(self, filters: dict[str, str], body: dict[str, Any]) -> list[dict[str, Any]]:
        draft_id = flow_id(next(self.ids))
        self.drafts[draft_id] = {}
        self.draft_rows[draft_id] = {"id": draft_id, "created_at": datetime.now(UTC).isoformat(), **body}
        return [self.draft_rows[draft_id]]

    def _get_drafts(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return where([self.draft_rows[d] for d in self.drafts], filters)

    def _delete_drafts(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        for draft_id in [d for d in self.drafts if matches(d, filters["id"])]:
            del self.drafts[draft_id]
        return []

    def _post_draft_specs(self, filters: dict[str, str], body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in body:
            if row["draft_id"] not in self.drafts:
                raise pg_error(
                    409,
                    "23503",
                    'insert or update on table "draft_specs" violates foreign key constraint',
                    f'Key (draft_id)=({row["draft_id"]}) is not present in table "drafts".',
                )
            self.drafts[row["draft_id"]][row["catalog_name"]] = row
        return [{"catalog_name": r["catalog_name"], "spec_type": r["spec_type"]} for r in body]

    def _get_draft_errors(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return [e for d, errors in self.draft_errors.items() if matches(d, filters["draft_id"]) for e in errors]

    def _post_publications(self, filters: dict[str, str], body: dict[str, Any]) -> list[dict[str, Any]]:
        if body["draft_id"] not in self.drafts:
            raise pg_error(409, "23503", 'insert or update on table "publications" violates foreign key constraint')
        if self.concurrent_change:
            name, self.concurrent_change = self.concurrent_change, None
            live = self.live[name]
            self.add_live(name, live["spec_type"], {**live["spec"], "changedBy": "someone else"})
        pub = Publication(
            flow_id(next(self.ids)),
            body["draft_id"],
            bool(body.get("dry_run")),
            secrets.token_hex(8),
            self.queued_polls,
            str(body.get("detail") or ""),
        )
        self.publications[pub.id] = pub
        return [{"id": pub.id, "logs_token": pub.logs_token}]

    def _get_publications(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        rows = []
        for pub in self.publications.values():
            if all(matches({"id": pub.id, "draft_id": pub.draft_id}[k], v) for k, v in filters.items()):
                self._advance(pub)
                rows.append({"id": pub.id, "logs_token": pub.logs_token, "job_status": pub.job_status})
        return rows

    def _get_catalog_stats_hourly(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        rows = sorted(self.stats_rows, key=lambda r: (r["catalog_name"], r["ts"]))
        return [{**r, "ts": r["ts"].isoformat()} for r in where(rows, filters)]

    # ---- publications ----------------------------------------------------------------------
    def _advance(self, pub: Publication) -> None:
        """Move a queued publication on: stay queued for ``queued_polls`` polls, then build and activate."""
        if pub.job_status["type"] != "queued":
            return
        if pub.queued_polls > 0:
            pub.queued_polls -= 1
            return
        specs = self.drafts.get(pub.draft_id, {})
        mismatched = [
            s
            for s in specs.values()
            if s.get("expect_pub_id")
            and s["expect_pub_id"] != self.live.get(s["catalog_name"], {}).get("last_pub_id", ZERO_PUB_ID)
        ]
        if not specs:
            pub.job_status = {"type": "emptyDraft"}
        elif mismatched:
            self._fail_mismatch(pub, mismatched)
        elif errors := self._build_errors(specs):
            pub.job_status = {"type": "buildFailed"}
            self.draft_errors[pub.draft_id] = errors
        else:
            pub.job_status = {"type": "success"}
            if not pub.dry_run:
                self._activate(pub, specs)

    def _fail_mismatch(self, pub: Publication, mismatched: list[dict[str, Any]]) -> None:
        failures = [
            {
                "catalog_name": s["catalog_name"],
                "expected": s["expect_pub_id"],
                "actual": self.live.get(s["catalog_name"], {}).get("last_pub_id", ZERO_PUB_ID),
            }
            for s in mismatched
        ]
        if self.mismatch_status == "expectPubIdMismatch":
            pub.job_status = {"type": "expectPubIdMismatch", "failures": failures}
            return
        pub.job_status = {"type": "buildFailed"}
        self.draft_errors[pub.draft_id] = [
            {
                "scope": f"flow://{s['spec_type']}/{f['catalog_name']}",
                "detail": f"expected publication ID {f['expected']} was not matched (it's actually {f['actual']}): "
                "your changes have already been published or another publication has modified this spec; "
                "please try again with a fresh copy of the spec.",
            }
            for s, f in zip(mismatched, failures, strict=True)
        ]

    def _build_errors(self, specs: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
        """What a build would reject: unknown collections, plaintext endpoint configs, leftover placeholders."""
        known = {n for n, s in self.live.items() if s["spec_type"] == "collection"} | {
            n for n, s in specs.items() if s["spec_type"] == "collection"
        }
        errors = []
        for name, row in specs.items():
            spec = row.get("spec") or {}
            scope = f"flow://{row['spec_type']}/{name}"
            derive = spec.get("derive") if isinstance(spec.get("derive"), dict) else {}
            for binding in [*spec.get("bindings", []), *derive.get("transforms", [])]:
                target = binding.get("target") or binding.get("source")
                target = target["name"] if isinstance(target, dict) else target
                if target not in known:
                    errors.append({"scope": scope, "detail": f"collection {target} is not defined"})
            config = spec.get("endpoint", {}).get("connector", {}).get("config")
            if config is not None and "sops" not in config:
                errors.append({"scope": scope, "detail": "endpoint configuration must be encrypted"})
            elif config is not None:
                errors.extend({"scope": scope, "detail": d} for d in self._connector_errors(config))
        return errors

    def _connector_errors(self, config: dict[str, Any]) -> list[str]:
        """What the connector's validation says about a decrypted config."""
        try:
            plaintext = self._unseal(config)
        except KeyError:
            return ["sops: failed to decrypt the endpoint configuration (no data key for its ciphertext)"]
        errors = [
            f"config value {key} holds an unresolved placeholder" for key, v in plaintext.items() if "${" in str(v)
        ]
        if self.connector_error:
            errors.append(self.connector_error.format_map(defaultdict(str, plaintext)))
        return errors

    def _unseal(self, config: dict[str, Any]) -> dict[str, Any]:
        """Flattened plaintext of an encrypted config, as a connector would see it (``credentials.password``)."""
        flat: dict[str, Any] = {}
        for key, value in config.items():
            if isinstance(value, dict):
                flat.update({f"{key}_{k}": v for k, v in self._unseal(value).items()})
            elif isinstance(value, str) and value.startswith("ENC["):
                flat[key] = self.vault[value.split("data:", 1)[1].split(",", 1)[0]]
        return flat

    def _activate(self, pub: Publication, specs: dict[str, dict[str, Any]]) -> None:
        for name, row in specs.items():
            if row.get("spec") is None:
                self.live.pop(name, None)
                continue
            self._set_live(name, row["spec_type"], row["spec"], pub.id, pub.detail)
        del self.drafts[pub.draft_id]

    def _set_live(self, name: str, spec_type: str, spec: dict[str, Any] | None, pub_id: str, detail: str) -> None:
        """Make ``spec`` the live spec of ``name`` and record it in the publication history."""
        now = datetime.now(UTC).isoformat()
        self.live[name] = {
            "catalog_name": name,
            "spec_type": spec_type,
            "spec": spec,
            "md5": spec_md5(spec),
            "last_pub_id": pub_id,
            "last_build_id": pub_id,
            "updated_at": now,
        }
        self.history.append(
            {
                "pub_id": pub_id,
                "catalog_name": name,
                "spec_type": spec_type,
                "spec": spec,
                "detail": detail,
                "published_at": now,
                "user_email": "someone@example.com",
            }
        )

    # ---- agent + encryption ----------------------------------------------------------------
    def _status(self, names: list[str]) -> list[dict[str, Any]]:
        forbidden = [n for n in names if n in self.forbidden]
        if forbidden:
            raise HttpError(
                403, {"error": "missing_capabilities", "message": f"missing read capability for {forbidden[0]}"}
            )
        unknown = [n for n in names if n not in self.live]
        if unknown:
            raise HttpError(404, f"no such catalog spec: {unknown[0]}")
        return [self._status_row(self.live[n]) for n in names]

    def _status_row(self, live: dict[str, Any]) -> dict[str, Any]:
        disabled = bool(task_shards(live["spec"]).get("disable"))
        status, message = self.status_override.get(live["catalog_name"], ("taskDisabled" if disabled else "ok", ""))
        return {
            "catalog_name": live["catalog_name"],
            "spec_type": live["spec_type"],
            "summary": {
                "status": status,
                "message": message or ("task shards are disabled" if disabled else "all shards running"),
            },
            "disabled": disabled,
            "last_pub_id": live["last_pub_id"],
            "last_build_id": live["last_build_id"],
            "connector_status": None,
            "controller_status": None,
            "controller_error": None if status == "ok" else message or None,
            "controller_failures": 0,
        }

    def _encrypt(self, body: dict[str, Any]) -> dict[str, Any]:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("schema"), dict)
            or not isinstance(body.get("config"), dict)
        ):
            raise HttpError(400, {"error": "invalid request", "message": "expected {config, schema}"})
        self.plaintext_configs.append(body["config"])
        return {
            **{k: self._seal(v) for k, v in body["config"].items()},
            "sops": {
                "kms": [{"resource_id": "projects/estuary/keys/config"}],
                "encrypted_suffix": "",
                "version": "3.7.3",
            },
        }

    def _seal(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._seal(v) for k, v in value.items()}
        handle = secrets.token_hex(8)
        self.vault[handle] = value
        return f"ENC[AES256_GCM,data:{handle},type:{type(value).__name__}]"


def _handler_for(fake: FakeEstuary) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:  # quiet
            return

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            entry = Logged(
                self.command, url.path, parse_qsl(url.query), {k.lower(): v for k, v in self.headers.items()}, raw
            )
            with fake.lock:
                fake.requests.append(entry)
            fault = fake.next_fault(url.path, self.command)
            if fault and fault.kind == "drop":
                entry.status = -1
                self.close_connection = True
                self.connection.shutdown(2)
                return
            status, body, headers = self._answer(fault, entry, raw)
            entry.status = status
            time.sleep(fake.latency_seconds + (fake.slow_seconds if fault and fault.kind == "slow" else 0.0))
            self._write(status, body, headers)

        def _answer(self, fault: Fault | None, entry: Logged, raw: str) -> tuple[int, Any, dict[str, str]]:
            if fault and fault.kind == "307":
                return 307, "", {"Location": self.path, "Retry-After": fault.retry_after or "0"}
            if fault and fault.kind == "429":
                return 429, {"message": "rate limited"}, {"Retry-After": fault.retry_after or "1"}
            if fault and fault.kind in {"500", "503"}:
                return int(fault.kind), {"code": "XX000", "message": "upstream unavailable"}, {}
            if fault and fault.kind == "echo-auth":  # a misbehaving proxy that quotes the credential back
                return 403, {"message": f"credential {entry.headers.get('authorization')} rejected"}, {}
            if fault and fault.kind in CLIENT_ERRORS:
                return int(fault.kind), CLIENT_ERRORS[fault.kind], {}
            try:
                body = json.loads(raw) if raw else None
                with fake.lock:
                    return fake.dispatch(entry.method, entry.path, entry.query, entry.headers, body)
            except HttpError as exc:
                return exc.status, exc.body, exc.headers

        def _write(self, status: int, body: Any, headers: dict[str, str]) -> None:
            if status == 204:
                data, kind = b"", "application/json"
            elif isinstance(body, str):
                data, kind = body.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(body, default=str).encode(), "application/json"
            try:
                self.send_response(status)
                for key, value in {"Content-Type": kind, "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_DELETE = do_PATCH = _serve

    return Handler


def http_date_in(seconds: float) -> str:
    """An HTTP date ``seconds`` from now, for ``Retry-After``."""
    return format_datetime(datetime.fromtimestamp(time.time() + seconds, UTC), usegmt=True)
