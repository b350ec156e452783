"""The built manifests validate against the Kubernetes OpenAPI schemas (kubernetes-validate):
core objects as they are, and each Knative Service's and Deployment's pod template as a Pod."""

from __future__ import annotations

import shutil
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.manifests import build

KUBERNETES_VERSION = "1.30"
CORE_API_VERSIONS = ("v1", "apps/v1", "networking.k8s.io/v1")
TARGETS = ("base", "overlays/dev", "overlays/prod")
KNATIVE_REVISION_FIELDS = (
    "containerConcurrency",
    "timeoutSeconds",
    "responseStartTimeoutSeconds",
    "idleTimeoutSeconds",
)
"""What a Knative revision template adds to a PodSpec (serving.knative.dev/v1 RevisionSpec)."""

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl kustomize")


def built(target: str) -> list[dict[str, Any]]:
    return list(build(target))


def as_pod(resource: dict[str, Any]) -> dict[str, Any]:
    spec = dict(resource["spec"]["template"]["spec"])
    for field in KNATIVE_REVISION_FIELDS:
        spec.pop(field, None)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": resource["metadata"]["name"]},
        "spec": spec,
    }


@pytest.mark.parametrize("target", TARGETS)
def test_core_objects_and_pod_templates_validate(target: str) -> None:
    resources = built(target)
    core = [r for r in resources if r["apiVersion"] in CORE_API_VERSIONS]
    pods = [
        as_pod(r)
        for r in resources
        if r["kind"] in ("Service", "Deployment")
        and r["apiVersion"] in ("serving.knative.dev/v1", "apps/v1")
    ]

    assert {r["kind"] for r in core} >= {"Namespace", "ConfigMap", "Deployment", "Service"}
    assert len(pods) >= 7, "five Knative Services, the gateway and web Deployments"
    for resource in [*core, *pods]:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_an_invalid_object_is_refused() -> None:
    broken = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "eighty"}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
