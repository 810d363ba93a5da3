"""A small code location the MCP asset tools are tested against through a real Dagster webserver."""

import dagster as dg


@dg.asset(key=["tiny", "numbers"], group_name="tiny")
def numbers() -> list[int]:
    return [1, 2, 3]


@dg.asset(key=["tiny", "total"], group_name="tiny", deps=[numbers])
def total() -> int:
    return 6


@dg.asset(key=["tiny", "broken"], group_name="tiny")
def broken() -> None:
    raise RuntimeError("the source table tiny.broken is missing")


@dg.asset_check(asset=total, blocking=True)
def total_is_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


defs = dg.Definitions(
    assets=[numbers, total, broken],
    asset_checks=[total_is_positive],
    jobs=[dg.define_asset_job("governance_daily", selection=[total])],
)
