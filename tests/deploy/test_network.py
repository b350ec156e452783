"""The NetworkPolicies of ``knative/`` let exactly the expected pods reach each pod and port.

Pods filepipe ships take their labels from the built pod templates (plus the label Knative adds,
``serving.knative.dev/service``); the other pods carry the labels their projects give them, as
knative/README.md ("Network policies") cites them: Knative Serving's activator and autoscaler,
Kourier's gateway, eventing-rabbitmq's Broker ingress, dispatchers and RabbitmqSource adapter,
the RabbitMQ Cluster Operator's pods, ingress-nginx's controller, cert-manager's HTTP-01
solver. The evaluation is in ``tests/deploy/network.py``.

Knative Services are reached through Knative's data plane, never straight from the caller:
``process`` accepts the activator and Kourier, not the dispatchers themselves; what else keeps
callers apart is tested in test_knative.py (cluster-local Services, the Ingress routes).
"""

from __future__ import annotations

import copy

import pytest

from tests.deploy.manifests import BUILDS, Doc, build, ksvcs, of, workloads
from tests.deploy.network import Pod, allowed, selecting

FUNCTIONS = ("presign", "process", "query", "notify", "webhooks")


def namespace(target: str) -> str:
    (ns,) = of(build(target), "Namespace")
    return ns


def policies(target: str) -> list[Doc]:
    return list(of(build(target), "NetworkPolicy", "networking.k8s.io/").values())


def catalog(target: str) -> dict[str, Pod]:
    """Every pod the tests ask about, by a short name."""
    ns = namespace(target)
    pods = {}
    docs = build(target)
    for name, template in workloads(docs).items():
        labels = dict(template["metadata"]["labels"])
        if name in ksvcs(docs):
            labels["serving.knative.dev/service"] = name
        pods[name] = Pod(ns, labels)
    broker = {"eventing.knative.dev/broker": "default"}
    pods |= {
        "migrate": Pod(ns, {"app.kubernetes.io/name": "migrate"}),
        "broker-ingress": Pod(ns, {**broker, "eventing.knative.dev/brokerRole": "ingress"}),
        "dispatcher": Pod(ns, {**broker, "eventing.knative.dev/brokerRole": "dispatcher"}),
        "dlq-dispatcher": Pod(ns, {**broker, "eventing.knative.dev/brokerRole": "dispatcher-dlq"}),
        "source-adapter": Pod(
            ns,
            {
                "eventing.knative.dev/source": "rabbitmq-source-controller",
                "eventing.knative.dev/SourceName": "minio-notifications",
            },
        ),
        "rabbitmq": Pod(
            ns,
            {
                "app.kubernetes.io/name": "rabbitmq",
                "app.kubernetes.io/component": "rabbitmq",
                "app.kubernetes.io/part-of": "rabbitmq",
            },
        ),
        "postgresql": Pod(ns, {"app.kubernetes.io/name": "postgresql"}),
        "redis": Pod(ns, {"app.kubernetes.io/name": "redis"}),
        "minio": Pod(ns, {"app.kubernetes.io/name": "minio"}),
        "acme-solver": Pod(ns, {"acme.cert-manager.io/http01-solver": "true"}),
        "activator": Pod("knative-serving", {"app": "activator", "role": "activator"}),
        "autoscaler": Pod("knative-serving", {"app": "autoscaler"}),
        "kourier": Pod("kourier-system", {"app": "3scale-kourier-gateway"}),
        "pingsource-adapter": Pod("knative-eventing", {"app": "pingsource-mt-adapter"}),
        "ingress-nginx": Pod(
            "ingress-nginx",
            {
                "app.kubernetes.io/name": "ingress-nginx",
                "app.kubernetes.io/instance": "ingress-nginx",
                "app.kubernetes.io/component": "controller",
            },
        ),
        "prometheus": Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "rabbitmq-operator": Pod(
            "rabbitmq-system", {"app.kubernetes.io/name": "rabbitmq-operator"}
        ),
        "intruder": Pod(ns, {"app": "debug-shell"}),
        # Another namespace's pod wearing filepipe's labels reaches nothing a podSelector guards.
        "impostor": Pod("default", {"app.kubernetes.io/name": "presign"}),
    }
    return pods


DATA_PLANE = {"activator", "kourier"}
EXPECTED: dict[tuple[str, int], set[str]] = {
    **{(name, 8012): DATA_PLANE for name in FUNCTIONS},
    **{(name, 8013): DATA_PLANE for name in FUNCTIONS},
    **{(name, 8080): set() for name in FUNCTIONS},  # the user port: queue-proxy only (localhost)
    **{(name, 9090): {"autoscaler"} for name in FUNCTIONS},
    **{(name, 9095): {"prometheus"} for name in FUNCTIONS},
    ("gateway", 8080): {"ingress-nginx"},
    ("gateway", 9095): {"prometheus"},
    ("web", 8080): {"ingress-nginx"},
    ("web", 9095): set(),
    ("broker-ingress", 8080): {"presign", "process", "query", "notify", "source-adapter"},
    ("broker-ingress", 9090): {"prometheus"},
    ("dispatcher", 9090): {"prometheus"},
    ("dlq-dispatcher", 9090): {"prometheus"},
    ("source-adapter", 9090): set(),
    ("rabbitmq", 5672): {
        "broker-ingress",
        "dispatcher",
        "dlq-dispatcher",
        "source-adapter",
        "minio",
        "rabbitmq",
    },
    ("rabbitmq", 15672): {"rabbitmq-operator", "rabbitmq"},
    ("rabbitmq", 25672): {"rabbitmq"},
    ("rabbitmq", 15692): {"prometheus", "rabbitmq"},
    ("postgresql", 5432): {
        "presign",
        "process",
        "query",
        "notify",
        "webhooks",
        "gateway",
        "migrate",
    },
    ("redis", 6379): {"process", "query", "notify", "gateway"},
    ("minio", 9000): {"presign", "process", "query", "ingress-nginx"},
    ("acme-solver", 8089): {"ingress-nginx"},
}


@pytest.mark.parametrize("target", BUILDS)
def test_default_deny_selects_every_pod(target: str) -> None:
    deny = [p for p in policies(target) if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert deny[0]["spec"]["policyTypes"] == ["Ingress"]
    assert not deny[0]["spec"].get("ingress")
    for name, pod in catalog(target).items():
        if pod.namespace == namespace(target):
            assert deny[0] in selecting(policies(target), pod), name


@pytest.mark.parametrize("target", BUILDS)
def test_every_shipped_pod_has_a_policy_of_its_own(target: str) -> None:
    pods = catalog(target)
    for name in workloads(build(target)):
        named = [p for p in selecting(policies(target), pods[name]) if p["spec"]["podSelector"]]
        assert named, name


@pytest.mark.parametrize("target", BUILDS)
@pytest.mark.parametrize(("pod", "port"), sorted(EXPECTED))
def test_who_reaches_what(target: str, pod: str, port: int) -> None:
    pods = catalog(target)
    reached_by = {
        name
        for name, source in pods.items()
        if name != pod and allowed(policies(target), source, pods[pod], port)
    }
    if pod == "rabbitmq":  # its peers are other pods of the same cluster
        peer = Pod(pods[pod].namespace, dict(pods[pod].labels))
        if allowed(policies(target), peer, pods[pod], port):
            reached_by.add("rabbitmq")
    assert reached_by == EXPECTED[(pod, port)]


def test_the_evaluation_sees_a_widened_policy() -> None:
    widened = copy.deepcopy(policies("base"))
    for policy in widened:
        if policy["metadata"]["name"] == "redis":
            policy["spec"]["ingress"][0]["from"][0]["podSelector"] = {}
    pods = catalog("base")
    assert allowed(widened, pods["intruder"], pods["redis"], 6379)
    assert not allowed(policies("base"), pods["intruder"], pods["redis"], 6379)


def test_without_the_default_deny_everything_is_open() -> None:
    pods = catalog("base")
    assert allowed([], pods["intruder"], pods["process"], 8012)
