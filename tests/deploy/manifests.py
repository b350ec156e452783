"""The Knative/Kubernetes manifests as ``kubectl kustomize`` builds them, for the deploy tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KNATIVE = ROOT / "knative"
BUILDS = ("base", "overlays/dev", "overlays/prod")

Doc = dict[str, Any]


def kustomize(directory: Path) -> tuple[Doc, ...]:
    """The resources ``kubectl kustomize directory`` prints (the test is skipped without it)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot run `kubectl kustomize`")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@cache
def build(target: str) -> tuple[Doc, ...]:
    """``knative/<target>`` built (``base``, ``overlays/dev``, ``overlays/prod``).

    The dev overlay generates its Secret from ``secrets.env``, which developers write and git
    ignores; where it is missing, the build runs on a copy of ``knative/`` with
    ``secrets.env.example`` in its place (empty values, the same keys)."""
    if (KNATIVE / target / "secrets.env").exists() or not (
        KNATIVE / target / "secrets.env.example"
    ).exists():
        return kustomize(KNATIVE / target)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "knative"
        shutil.copytree(KNATIVE, copy)
        shutil.copy(copy / target / "secrets.env.example", copy / target / "secrets.env")
        return kustomize(copy / target)


def of(docs: tuple[Doc, ...], kind: str, api_prefix: str = "") -> dict[str, Doc]:
    """The resources of ``kind`` (whose apiVersion starts with ``api_prefix``) by name."""
    return {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == kind and d["apiVersion"].startswith(api_prefix)
    }


def ksvcs(docs: tuple[Doc, ...]) -> dict[str, Doc]:
    """The Knative Services by name."""
    return of(docs, "Service", "serving.knative.dev/")


def workloads(docs: tuple[Doc, ...]) -> dict[str, Doc]:
    """Every pod template filepipe ships (Knative Services and Deployments), by name."""
    found = {name: k["spec"]["template"] for name, k in ksvcs(docs).items()}
    for name, deployment in of(docs, "Deployment", "apps/").items():
        assert name not in found, name
        found[name] = deployment["spec"]["template"]
    return found
