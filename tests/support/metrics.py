"""Reading a ``/metrics`` endpoint the way Prometheus does (the text exposition format)."""

from __future__ import annotations

import requests
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def _text(port: int) -> str:
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    return response.text


def scrape(port: int) -> list[Sample]:
    """Every sample ``/metrics`` on ``port`` serves (raises if it does not parse)."""
    return [s for family in text_string_to_metric_families(_text(port)) for s in family.samples]


def families(port: int) -> set[str]:
    """The names of the metric families ``/metrics`` on ``port`` declares, samples or not."""
    return {family.name for family in text_string_to_metric_families(_text(port))}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def samples_of(metric: MetricWrapperBase) -> list[Sample]:
    """The samples a metric of this process holds now (no server involved)."""
    return [sample for family in metric.collect() for sample in family.samples]
