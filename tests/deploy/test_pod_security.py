"""Every pod filepipe ships meets the ``restricted`` Pod Security Standard and filepipe's own
hardening (read-only root filesystem, emptyDirs for /tmp and the metrics directory, no service
account token); Knative Services use only what Knative's webhook accepts; the namespace carries
the Pod Security Admission labels. The rules are in ``tests/deploy/pod_security.py``; the
mutation cases below show that each one can fail."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.manifests import BUILDS, build, ksvcs, of, workloads
from tests.deploy.pod_security import (
    hardening_violations,
    knative_violations,
    restricted_violations,
)

PSA = "pod-security.kubernetes.io/"
Pod = dict[str, Any]


@pytest.mark.parametrize("target", BUILDS)
def test_every_pod_is_restricted_and_hardened(target: str) -> None:
    pods = workloads(build(target))
    assert {"presign", "process", "query", "notify", "webhooks", "gateway", "web"} <= set(pods)
    for name, template in pods.items():
        spec = template["spec"]
        assert restricted_violations(spec) == [], name
        assert hardening_violations(spec) == [], name


@pytest.mark.parametrize("target", BUILDS)
def test_knative_services_use_only_what_knative_accepts(target: str) -> None:
    for name, ksvc in ksvcs(build(target)).items():
        assert knative_violations(ksvc["spec"]["template"]["spec"]) == [], name


@pytest.mark.parametrize("target", BUILDS)
def test_gunicorn_functions_share_metrics_through_an_emptydir(target: str) -> None:
    for name, ksvc in ksvcs(build(target)).items():
        (container,) = ksvc["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env.get("PROMETHEUS_MULTIPROC_DIR"), name  # checked on an emptyDir above


@pytest.mark.parametrize("target", BUILDS)
def test_namespace_pod_security_labels(target: str) -> None:
    (namespace,) = of(build(target), "Namespace").values()
    labels = namespace["metadata"]["labels"]
    # eventing-rabbitmq's pods in the namespace set no seccomp profile: baseline is enforced,
    # restricted audited and warned about (knative/README.md).
    assert labels[PSA + "enforce"] in {"baseline", "restricted"}
    assert labels[PSA + "audit"] == "restricted"
    assert labels[PSA + "warn"] == "restricted"
    for mode in ("enforce", "audit", "warn"):
        assert labels[PSA + f"{mode}-version"] == "latest"


def _good_pod() -> Pod:
    return copy.deepcopy(ksvcs(build("base"))["process"]["spec"]["template"]["spec"])


def _container(pod: Pod) -> Pod:
    container: Pod = pod["containers"][0]
    return container


def _sc(pod: Pod) -> Pod:
    sc: Pod = _container(pod)["securityContext"]
    return sc


MUTATIONS: dict[str, tuple[Callable[[Pod], object], str]] = {
    "escalation": (lambda p: _sc(p).pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    "root": (lambda p: _sc(p).update(runAsNonRoot=False), "runAsNonRoot"),
    "uid0": (lambda p: _sc(p).update(runAsUser=0), "UID 0"),
    "no seccomp": (lambda p: _sc(p).pop("seccompProfile"), "seccomp"),
    "unconfined": (lambda p: _sc(p).update(seccompProfile={"type": "Unconfined"}), "seccomp"),
    "caps kept": (lambda p: _sc(p).update(capabilities={"drop": ["NET_RAW"]}), "dropped"),
    "caps added": (
        lambda p: _sc(p)["capabilities"].update(add=["SYS_ADMIN"]),
        "adds capabilities",
    ),
    "privileged": (lambda p: _sc(p).update(privileged=True), "privileged"),
    "host network": (lambda p: p.update(hostNetwork=True), "hostNetwork"),
    "host path": (
        lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "hostPath",
    ),
    "host port": (lambda p: _container(p)["ports"][0].update(hostPort=80), "hostPort"),
}


@pytest.mark.parametrize("case", MUTATIONS)
def test_the_restricted_check_catches(case: str) -> None:
    mutate, message = MUTATIONS[case]
    pod = _good_pod()
    mutate(pod)
    assert any(message in found for found in restricted_violations(pod)), case


HARDENING: dict[str, tuple[Callable[[Pod], object], str]] = {
    "writable root": (lambda p: _sc(p).pop("readOnlyRootFilesystem"), "writable"),
    "no /tmp": (
        lambda p: _container(p).update(
            volumeMounts=[m for m in _container(p)["volumeMounts"] if m["mountPath"] != "/tmp"]
        ),
        "/tmp",
    ),
    "metrics dir elsewhere": (
        lambda p: _container(p)["env"].append(
            {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/var/metrics"}
        ),
        "PROMETHEUS_MULTIPROC_DIR",
    ),
    "token": (lambda p: p.pop("automountServiceAccountToken"), "token"),
}


@pytest.mark.parametrize("case", HARDENING)
def test_the_hardening_check_catches(case: str) -> None:
    mutate, message = HARDENING[case]
    pod = _good_pod()
    mutate(pod)
    assert any(message in found for found in hardening_violations(pod)), case


KNATIVE: dict[str, tuple[Callable[[Pod], object], str]] = {
    "pod securityContext": (
        lambda p: p.update(securityContext={"runAsNonRoot": True}),
        "securityContext",
    ),
    "container field": (lambda p: _sc(p).update(procMount="Unmasked"), "procMount"),
    "reserved path": (
        lambda p: _container(p)["volumeMounts"].append({"name": "tmp", "mountPath": "/dev"}),
        "reserved",
    ),
    "token true": (lambda p: p.update(automountServiceAccountToken=True), "false"),
}


@pytest.mark.parametrize("case", KNATIVE)
def test_the_knative_check_catches(case: str) -> None:
    mutate, message = KNATIVE[case]
    pod = _good_pod()
    mutate(pod)
    assert any(message in found for found in knative_violations(pod)), case
