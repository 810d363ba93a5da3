"""The code location's graph against a reviewed snapshot: a change to any asset, check, job, schedule or sensor
shows as a readable diff instead of a changed count.

The snapshot (``graph_snapshot.txt`` beside this file) lists, sorted: each asset with its group, kinds, owners,
dependencies and whether it is external; each asset check and whether it blocks; jobs; schedules with their cron
and job; sensors with their default status.

To accept an intended change, regenerate it and review the diff::

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/foundation/test_graph_snapshot.py
    git diff tests/foundation/graph_snapshot.txt
"""

import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).with_name("graph_snapshot.txt")


def _names(items: object) -> str:
    return ",".join(sorted(str(item) for item in items)) or "-"


def render_graph(defs: dg.Definitions) -> str:
    """Readable, sorted text of everything the definitions hold."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parents = _names(parent.to_user_string() for parent in node.parent_keys)
        role = "materializable" if node.is_materializable else "external"
        assets.append(
            f"{key.to_user_string()}  {role}  group={node.group_name}  kinds={_names(node.kinds)}"
            f"  owners={_names(node.owners)}  deps={parents}"
        )
    checks = sorted(
        f"{key.asset_key.to_user_string()}:{key.name}  blocking={graph.get_check_spec(key).blocking}"
        for key in graph.asset_check_keys
    )
    jobs = sorted(job.name for job in repo.get_all_jobs() if not job.name.startswith("__"))
    schedules = sorted(f"{s.name}  cron={s.cron_schedule}  job={s.job_name}" for s in repo.schedule_defs)
    sensors = sorted(f"{s.name}  default={s.default_status.value}" for s in repo.sensor_defs)
    sections = {"assets": assets, "asset checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}
    return "".join(
        f"## {title} ({len(lines)})\n" + "".join(f"{line}\n" for line in lines) for title, lines in sections.items()
    )


def test_the_graph_matches_its_snapshot() -> None:
    from sophia_dagster.definitions import defs

    rendered = render_graph(defs())
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(rendered)
    assert SNAPSHOT.exists(), f"no snapshot yet: run UPDATE_SNAPSHOTS=1 pytest {Path(__file__).name}"
    assert rendered == SNAPSHOT.read_text(), (
        f"the graph changed; review the diff and regenerate with UPDATE_SNAPSHOTS=1 ({SNAPSHOT.name})"
    )
