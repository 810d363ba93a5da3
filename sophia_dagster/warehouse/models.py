"""The analytics models: Snowflake SQL files in `sql/`, each a SELECT with its config in a comment header.

A model file starts with ``-- key: value`` lines (`description`, `target_lag`, `refresh_mode`,
`warn_window_minutes`, `fail_window_minutes`) followed by one SELECT over fully qualified raw tables
(``SOPHIA.RAW.DEALS``). Its inputs are parsed from the SQL (FROM/JOIN tables that are not CTEs) and
become the upstream asset keys. In Snowflake a model is a dynamic table that refreshes itself within
its `TARGET_LAG`; the embedded engine has no dynamic tables, so there it is a table rebuilt on
materialize from the very same SELECT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

import dagster as dg
import sqlglot
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp

from sophia_dagster.warehouse.objects import ANALYTICS_SCHEMA, DATABASE, sql_literal

SQL_DIR = Path(__file__).parent / "sql"
_HEADER = re.compile(r"^--\s*([a-z_]+)\s*:\s*(.+?)\s*$")


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file and the key or table at fault."""


class ModelConfig(BaseModel):
    """What a model's comment header declares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    target_lag: str = Field(pattern=r"^(\d+ (second|minute|hour|day)s?|DOWNSTREAM)$")
    refresh_mode: Literal["AUTO", "FULL", "INCREMENTAL"] = "AUTO"
    warn_window_minutes: int | None = Field(None, gt=0)
    fail_window_minutes: int = Field(gt=0)


@dataclass(frozen=True)
class Model:
    """One analytics model: its name, SELECT, config and the raw tables it reads."""

    name: str
    path: Path
    select: str
    config: ModelConfig
    inputs: tuple[str, ...]

    @property
    def table(self) -> str:
        """The model's fully qualified table name."""
        return f"{DATABASE}.{ANALYTICS_SCHEMA}.{self.name.upper()}"

    @property
    def key(self) -> dg.AssetKey:
        """The model's asset key, `snowflake/sophia/analytics/<name>`."""
        return table_key(self.table)

    @property
    def deps(self) -> list[dg.AssetKey]:
        """The asset keys of the tables the SQL reads."""
        return [table_key(name) for name in self.inputs]

    @property
    def freshness_policy(self) -> dg.FreshnessPolicy:
        """Fail when the model has not been updated within its fail window (warn earlier, if set)."""
        warn = self.config.warn_window_minutes
        return dg.FreshnessPolicy.time_window(
            fail_window=timedelta(minutes=self.config.fail_window_minutes),
            warn_window=timedelta(minutes=warn) if warn else None,
        )


def table_key(qualified: str) -> dg.AssetKey:
    """`DB.SCHEMA.TABLE` -> the asset key `snowflake/db/schema/table`."""
    return dg.AssetKey(["snowflake", *qualified.lower().split(".")])


def _split_header(path: Path, text: str) -> tuple[dict[str, str], str]:
    header: dict[str, str] = {}
    lines = text.splitlines()
    while lines and lines[0].startswith("--"):
        match = _HEADER.match(lines.pop(0))
        if not match:
            raise ModelError(f"{path}: header lines must read '-- key: value'")
        if match.group(1) in header:
            raise ModelError(f"{path}: header key '{match.group(1)}' is given twice")
        header[match.group(1)] = match.group(2)
    return header, "\n".join(lines).strip().rstrip(";")


def input_tables(path: Path, select: str) -> tuple[str, ...]:
    """The fully qualified tables a SELECT reads (CTE names excluded), upper-cased, sorted."""
    try:
        tree = sqlglot.parse_one(select, read="snowflake")
    except sqlglot.errors.SqlglotError as exc:
        raise ModelError(f"{path}: not valid Snowflake SQL: {exc}") from None
    except RecursionError:
        raise ModelError(f"{path}: the SQL is nested too deeply to parse") from None
    if not isinstance(tree, exp.Query):
        raise ModelError(f"{path}: a model must be a single SELECT, found {tree.key.upper()}")
    ctes = {cte.alias_or_name.upper() for cte in tree.find_all(exp.CTE)}
    tables = set()
    for table in tree.find_all(exp.Table):
        if table.name.upper() in ctes and not table.db:
            continue
        if not (table.catalog and table.db):
            raise ModelError(f"{path}: table '{table.sql('snowflake')}' must be qualified as DATABASE.SCHEMA.TABLE")
        tables.add(f"{table.catalog}.{table.db}.{table.name}".upper())
    return tuple(sorted(tables))


def load_model(path: Path) -> Model:
    """Read and validate one model file; any problem is a `ModelError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read: {exc.strerror}") from None
    header, select = _split_header(path, text)
    try:
        config = ModelConfig(**header)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'header'}: {e['msg']}" for e in exc.errors())
        raise ModelError(f"{path}: invalid header: {problems}") from None
    return Model(path.stem, path, select, config, input_tables(path, select))


def load_models(directory: Path = SQL_DIR) -> list[Model]:
    """Every model in `directory`, by name."""
    return [load_model(path) for path in sorted(directory.glob("*.sql"))]


def create_table_sql(model: Model) -> str:
    """The embedded engine's form: a table rebuilt from the SELECT."""
    return f"CREATE OR REPLACE TABLE {model.table} AS\n{model.select}"


def create_dynamic_table_sql(model: Model, warehouse: str) -> str:
    """Snowflake's form: a dynamic table kept within TARGET_LAG of its inputs by `warehouse`."""
    lag = model.config.target_lag
    return (
        f"CREATE OR REPLACE DYNAMIC TABLE {model.table}\n"
        f"  TARGET_LAG = {lag if lag == 'DOWNSTREAM' else repr(lag)}\n"
        f"  WAREHOUSE = {warehouse}\n"
        f"  REFRESH_MODE = {model.config.refresh_mode}\n"
        f"  COMMENT = {sql_literal(model.config.description)}\n"
        f"AS\n{model.select}"
    )
