"""Provisioned Grafana dashboards and the Prometheus config agree with the metrics we export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from filepipe import metrics

OBSERVABILITY = Path(__file__).resolve().parents[2] / "observability"
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
METRIC_NAME = re.compile(r"\bfilepipe_[a-zA-Z0-9_]+")


def exported_names() -> set[str]:
    """Every series name the registry can expose (families as the text format names them)."""
    families: list[Metric] = list(metrics.get().registry.collect())
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))  # rows nest their panels
    return found


def test_there_are_dashboards_for_each_concern() -> None:
    assert {p.stem for p in DASHBOARDS} >= {"pipeline", "errors", "webhooks", "cache-db"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_metrics_the_code_exports(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and panels(dashboard)
    exported = exported_names()
    for panel in panels(dashboard):
        exprs = [target["expr"] for target in panel.get("targets", [])]
        assert exprs, f"panel {panel['title']!r} has no query"
        for expr in exprs:
            names = set(METRIC_NAME.findall(expr))
            assert names, f"{panel['title']!r}: {expr} names no filepipe metric"
            assert names <= exported, f"{panel['title']!r}: unknown {names - exported}"


def test_every_metric_appears_on_some_dashboard() -> None:
    queried = {
        name
        for path in DASHBOARDS
        for panel in panels(json.loads(path.read_text()))
        for target in panel.get("targets", [])
        for name in METRIC_NAME.findall(target["expr"])
    }
    families = {family.name for family in metrics.get().registry.collect()}
    assert {f for f in families if not any(q.startswith(f) for q in queried)} == set()


def test_prometheus_scrapes_every_function_on_its_metrics_port() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {
        "presign": "presign:9081",
        "process": "process:9082",
        "query": "query:9083",
        "notify": "notify:9084",
        "webhooks": "webhooks:9085",
        "gateway": "gateway:9086",
        "broker": "broker:9090",
    }


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    provisioning = OBSERVABILITY / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    assert source["datasources"][0]["uid"] == "prometheus"
    boards = yaml.safe_load((provisioning / "dashboards" / "filepipe.yaml").read_text())
    assert boards["providers"][0]["type"] == "file"
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            assert panel["datasource"]["uid"] == "prometheus"
