"""Freshness and automation: the 1.13 FreshnessPolicy on warehouse tables and memory assets, and the
AutomationCondition that keeps analytics models fresh without rebuilding them over failed data."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

import dagster as dg

from sophia_dagster.governance.config import FreshnessConfig, Window


def freshness_policy(window: Window) -> dg.FreshnessPolicy:
    """A time-window policy: warn after ``warn_minutes``, fail after ``fail_minutes`` without an update."""
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=window.fail_minutes),
        warn_window=timedelta(minutes=window.warn_minutes) if window.warn_minutes else None,
    )


def model_condition(cron: str) -> dg.AutomationCondition:
    """Rebuild when an input updates or a cron tick passes, never while an input's blocking check has failed.

    Args:
        cron: how often a model is rebuilt even when its inputs did not change (keeps freshness green).

    Example:
        >>> model_condition("*/5 * * * *")
    """
    refresh = dg.AutomationCondition.eager() | (
        dg.AutomationCondition.cron_tick_passed(cron, "UTC").since_last_handled()
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.any_deps_in_progress()
    )
    blocked = dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
    ).with_label("an input failed a blocking check")
    return (refresh & ~blocked).with_label(f"fresh over checked inputs ({cron})")


def govern_spec(
    spec: dg.AssetSpec,
    config: FreshnessConfig,
    tables: Collection[dg.AssetKey],
    models: Collection[dg.AssetKey],
    memory_group: str = "memory",
) -> dg.AssetSpec:
    """``spec`` with governance's freshness policy (warehouse tables, memory assets) or automation (models).

    A policy the asset already declares (models carry theirs in their SQL header) is kept.
    """
    if spec.key in models:
        return spec.replace_attributes(automation_condition=model_condition(config.model_refresh_cron))
    if spec.freshness_policy is not None:
        return spec
    if spec.key in tables:
        return spec.replace_attributes(freshness_policy=freshness_policy(config.warehouse_tables))
    if spec.group_name == memory_group:
        return spec.replace_attributes(freshness_policy=freshness_policy(config.memory_assets))
    return spec
