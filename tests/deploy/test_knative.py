"""Static checks of the Knative/Kubernetes manifests in ``knative/`` (no cluster needed).

Every YAML file parses; ``kubectl kustomize`` builds the base and both overlays; the references
between resources (Trigger subscribers and dead-letter sinks, SinkBinding subjects, PingSource
sinks, Ingress backends) name resources that exist; each Knative Service's environment covers
what the package reads (names taken from ``filepipe.config``). This is structural checking only:
the CRDs (Knative, RabbitMQ operator) are not validated against their OpenAPI schemas.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from filepipe import config
from local.front import ROUTES
from tests.deploy.credentials import PENDING_ENV
from tests.deploy.manifests import BUILDS, KNATIVE, Doc, build, workloads
from tests.deploy.manifests import ksvcs as _ksvcs
from tests.deploy.manifests import of as _of

FUNCTIONS = {
    "presign": "presign",
    "process": "process",
    "query": "query",
    "notify": "notify",
    "webhooks": "webhooks",
}
PUBLISHERS = {"presign", "process", "query", "notify"}
SERVING = "serving.knative.dev/v1"
UPSTREAM_VHOST = "nginx.ingress.kubernetes.io/upstream-vhost"
QUEUE_PROXY_PORTS = {8012, 8013, 8022, 8112, 9090, 9091, 8008}
"""Ports Knative's queue-proxy binds in every Knative Service pod (knative/serving
pkg/networking/constants.go, and the reserved ports of pkg/apis/serving/k8s_validation.go):
the user container can listen on none of them."""
CONFIG_ENV = {
    config.S3_ENDPOINT_URL,
    config.S3_BUCKET,
    config.S3_REGION,
    config.S3_NOTIFY_EXCHANGE,
    config.METRICS_PORT,
}
"""Non-secret settings every workload gets from the ConfigMap (secrets: test_secrets.py)."""
STATIC = {"web"}
"""Workloads that run no filepipe code (the upload page's nginx): they read no setting."""
WEB_ROUTE = ("/", "web")
"""The upload page: what local/front.py and compose's nginx serve themselves, the cluster from
the ``web`` Deployment, behind every API path."""


def _yaml_files() -> list[Path]:
    return sorted([*KNATIVE.rglob("*.yaml"), *KNATIVE.rglob("*.yml")])


def _ref_exists(docs: tuple[Doc, ...], ref: Doc) -> bool:
    return any(
        d["kind"] == ref["kind"]
        and d["apiVersion"] == ref["apiVersion"]
        and d["metadata"]["name"] == ref["name"]
        for d in docs
    )


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(KNATIVE)))
def test_every_yaml_file_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs
    for doc in docs:
        assert isinstance(doc, dict)
        if path.name == "kustomizeconfig.yaml":  # kustomize transformer configuration
            assert "nameReference" in doc
            continue
        assert doc.get("apiVersion") and doc.get("kind"), path


@pytest.mark.parametrize("target", BUILDS)
def test_kustomize_builds(target: str) -> None:
    docs = build(target)
    kinds = {d["kind"] for d in docs}
    assert {"Service", "Trigger", "Broker", "SinkBinding", "PingSource"} <= kinds
    assert {"RabbitmqCluster", "RabbitmqBrokerConfig", "RabbitmqSource", "Ingress"} <= kinds
    assert set(_ksvcs(docs)) == set(FUNCTIONS)
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces


def test_eventing_is_included_unchanged() -> None:
    """The base carries knative/eventing/ as the local broker emulator reads it."""
    built = {(d["kind"], d["metadata"]["name"]): d for d in build("base")}
    for path in (KNATIVE / "eventing").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc["kind"] == "Kustomization":
                continue
            got = built[(doc["kind"], doc["metadata"]["name"])]
            assert got["spec"] == doc["spec"]


@pytest.mark.parametrize("target", BUILDS)
def test_trigger_destinations_exist(target: str) -> None:
    docs = build(target)
    triggers = _of(docs, "Trigger")
    assert triggers
    for name, trigger in triggers.items():
        spec = trigger["spec"]
        assert _ref_exists(docs, spec["subscriber"]["ref"]), name
        dead_letter = spec.get("delivery", {}).get("deadLetterSink")
        if dead_letter is not None:
            assert _ref_exists(docs, dead_letter["ref"]), name
        assert spec["broker"] in _of(docs, "Broker")


@pytest.mark.parametrize("target", BUILDS)
def test_sources_and_bindings_point_at_existing_resources(target: str) -> None:
    docs = build(target)
    for kind in ("PingSource", "RabbitmqSource"):
        for name, source in _of(docs, kind).items():
            assert _ref_exists(docs, source["spec"]["sink"]["ref"]), name
    bindings = _of(docs, "SinkBinding")
    subjects = set()
    for name, binding in bindings.items():
        subject = binding["spec"]["subject"]
        assert _ref_exists(docs, subject), name
        assert _ref_exists(docs, binding["spec"]["sink"]["ref"]), name
        assert binding["spec"]["sink"]["ref"]["kind"] == "Broker"
        subjects.add(subject["name"])
    assert subjects == PUBLISHERS


@pytest.mark.parametrize("target", BUILDS)
def test_rabbitmq_references_the_cluster(target: str) -> None:
    docs = build(target)
    clusters = _of(docs, "RabbitmqCluster")
    for kind in ("RabbitmqBrokerConfig", "RabbitmqSource"):
        for source in _of(docs, kind).values():
            assert source["spec"]["rabbitmqClusterReference"]["name"] in clusters
    assert _of(docs, "RabbitmqBrokerConfig")["filepipe-broker-config"]["spec"]["queueType"] == (
        "quorum"
    )


@pytest.mark.parametrize("target", BUILDS)
def test_knative_service_structure(target: str) -> None:
    docs = build(target)
    (settings,) = _of(docs, "ConfigMap").values()
    for name, ksvc in _ksvcs(docs).items():
        assert ksvc["apiVersion"] == SERVING
        template = ksvc["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        min_scale = int(annotations["autoscaling.knative.dev/min-scale"])
        max_scale = int(annotations["autoscaling.knative.dev/max-scale"])
        assert 0 <= min_scale <= max_scale
        assert int(annotations["autoscaling.knative.dev/target"]) > 0
        assert annotations["prometheus.io/scrape"] == "true"
        spec = template["spec"]
        assert spec["containerConcurrency"] >= 1
        (container,) = spec["containers"]  # Knative: exactly one serving container here
        assert container["image"].startswith("ghcr.io/filepipe/filepipe-"), name
        assert ":" in container["image"]
        (port,) = container["ports"]  # Knative allows a single port
        assert port["name"] in {"http1", "h2c"}
        metrics_port = int(annotations["prometheus.io/port"])
        assert port["containerPort"] != metrics_port
        assert metrics_port not in QUEUE_PROXY_PORTS, (name, metrics_port)
        assert settings["data"][config.METRICS_PORT] == str(metrics_port)
        assert port["containerPort"] not in QUEUE_PROXY_PORTS, name
        for probe in ("readinessProbe", "livenessProbe"):
            action = container[probe].get("httpGet") or container[probe].get("tcpSocket")
            assert action is not None, (name, probe)
            assert action["port"] == port["containerPort"]
        for key in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][key])
        env = {e["name"]: e for e in container["env"]}
        assert env["FUNCTION_TARGET"]["value"] == FUNCTIONS[name]


@pytest.mark.parametrize("target", BUILDS)
def test_gateway_serves_metrics_where_it_is_scraped(target: str) -> None:
    docs = build(target)
    (settings,) = _of(docs, "ConfigMap").values()
    gateway = _of(docs, "Deployment")["gateway"]["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in gateway["spec"]["containers"][0]["ports"]}
    annotated = int(gateway["metadata"]["annotations"]["prometheus.io/port"])
    assert ports["metrics"] == annotated == int(settings["data"][config.METRICS_PORT])


@pytest.mark.parametrize("target", BUILDS)
def test_probes_use_the_liveness_route_every_target_answers(target: str) -> None:
    """``/healthz`` (filepipe.health) answers GET on every target, the CloudEvent ones too;
    ``/readyz`` is no probe (an outage must not take the pods out of the activator's rotation)."""
    for ksvc in _ksvcs(build(target)).values():
        container = ksvc["spec"]["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == "/healthz"


def _env_names(docs: tuple[Doc, ...], container: Doc) -> set[str]:
    configmaps = _of(docs, "ConfigMap")
    names = {entry["name"] for entry in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(configmaps[source["configMapRef"]["name"]]["data"])
    return names


@pytest.mark.parametrize("target", BUILDS)
def test_environment_covers_what_the_package_reads(target: str) -> None:
    docs = build(target)
    known = {
        value
        for key, value in vars(config).items()
        if key.isupper() and isinstance(value, str) and value.startswith(("FILEPIPE_", "OTEL_"))
    } | PENDING_ENV
    for name, template in workloads(docs).items():
        container = template["spec"]["containers"][0]
        names = _env_names(docs, container)
        if name in STATIC:
            assert not {n for n in names if n.startswith(("FILEPIPE_", "OTEL_"))}, name
            assert not container.get("envFrom"), name
            continue
        assert names >= CONFIG_ENV, (name, CONFIG_ENV - names)
        # Every FILEPIPE_* variable set is one the package reads (no typos).
        set_vars = {n for n in names if n.startswith(("FILEPIPE_", "OTEL_"))}
        assert set_vars <= known, (name, set_vars - known)
        assert config.K_SINK not in names  # injected by the SinkBinding


def test_overlays_differ_in_tags_and_scale() -> None:
    def summary(target: str) -> tuple[set[str], set[str]]:
        ksvcs = _ksvcs(build(target)).values()
        tags = {k["spec"]["template"]["spec"]["containers"][0]["image"] for k in ksvcs}
        mins = {
            k["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"]
            for k in ksvcs
        }
        return {t.rsplit(":", 1)[1] for t in tags}, mins

    assert summary("overlays/dev") == ({"dev"}, {"0"})
    for target, tag in (("overlays/dev", "dev"), ("overlays/prod", "1.0.0")):
        for name in ("gateway", "web"):
            template = _of(build(target), "Deployment")[name]["spec"]["template"]
            assert template["spec"]["containers"][0]["image"].endswith(f":{tag}"), (target, name)
    prod_tags, prod_mins = summary("overlays/prod")
    assert prod_tags == {"1.0.0"} and prod_mins == {"2"}


@pytest.mark.parametrize("target", BUILDS)
def test_ingress_routes_the_public_paths(target: str) -> None:
    docs = build(target)
    services = set(_of(docs, "Service", "v1")) | set(_ksvcs(docs))
    routes = {}
    for ingress in _of(docs, "Ingress").values():
        vhost = ingress["metadata"].get("annotations", {}).get(UPSTREAM_VHOST)
        namespace = ingress["metadata"]["namespace"]
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                name = path["backend"]["service"]["name"]
                routes[path["path"]] = name
                if vhost is not None:  # Knative routes on <service>.<namespace>.svc.cluster.local
                    assert vhost == f"{name}.{namespace}.svc.cluster.local"
    assert routes == dict([*ROUTES, WEB_ROUTE])  # local.front's and nginx's
    assert set(routes.values()) <= services


@pytest.mark.parametrize("target", BUILDS)
def test_the_page_gets_only_what_no_api_path_claims(target: str) -> None:
    """``/`` is a Prefix path to the web Service; every API path is a longer Prefix of the same
    host, which ingress-nginx matches first, so it keeps its backend."""
    docs = build(target)
    paths = [
        (rule["host"], path)
        for ingress in _of(docs, "Ingress").values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    [(host, root)] = [(h, p) for h, p in paths if p["path"] == "/"]
    assert root["pathType"] == "Prefix"
    assert root["backend"]["service"] == {"name": "web", "port": {"number": 80}}
    for other_host, path in paths:
        assert other_host == host
        if path is not root:
            assert path["pathType"] == "Prefix" and len(path["path"]) > 1, path
            assert path["backend"]["service"]["name"] != "web", path


@pytest.mark.parametrize("target", BUILDS)
def test_the_web_service_reaches_the_page_port(target: str) -> None:
    docs = build(target)
    service = _of(docs, "Service", "v1")["web"]["spec"]
    template = _of(docs, "Deployment")["web"]["spec"]["template"]
    assert service["selector"].items() <= template["metadata"]["labels"].items()
    (container,) = template["spec"]["containers"]
    assert container["image"].startswith("ghcr.io/filepipe/filepipe-web")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    [port] = service["ports"]
    assert port["port"] == 80 and port["targetPort"] in ports
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WEB_PORT"] == str(ports[port["targetPort"]])  # what the image's nginx listens on
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": port["targetPort"]}


VISIBILITY = "networking.knative.dev/visibility"


@pytest.mark.parametrize("target", BUILDS)
def test_every_knative_service_is_cluster_local(target: str) -> None:
    """Knative's external gateway routes none of them: process and notify (the broker's and the
    PingSources' targets) are internal, and the public paths go through the ingress-nginx
    Ingresses, which reach presign, query and webhooks through Knative's local gateway."""
    docs = build(target)
    for name, ksvc in _ksvcs(docs).items():
        assert ksvc["metadata"]["labels"].get(VISIBILITY) == "cluster-local", name
    internal = {"process", "notify"}
    for ingress in _of(docs, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] not in internal


SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
FORCE_SSL_REDIRECT = "nginx.ingress.kubernetes.io/force-ssl-redirect"


@pytest.mark.parametrize("target", BUILDS)
def test_ingresses_serve_tls_and_redirect_http(target: str) -> None:
    docs = build(target)
    certificates = _of(docs, "Certificate", "cert-manager.io/")
    by_secret = {c["spec"]["secretName"]: c for c in certificates.values()}
    ingresses = _of(docs, "Ingress")
    assert ingresses
    for name, ingress in ingresses.items():
        annotations = ingress["metadata"]["annotations"]
        assert annotations.get(SSL_REDIRECT) == "true", name
        assert annotations.get(FORCE_SSL_REDIRECT) == "true", name
        hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
        tls = ingress["spec"].get("tls", [])
        assert tls, name
        covered = {host for entry in tls for host in entry["hosts"]}
        assert hosts <= covered, (name, hosts - covered)
        for entry in tls:
            # The certificate behind each TLS Secret covers its hosts (cert-manager keeps it).
            certificate = by_secret[entry["secretName"]]
            assert set(entry["hosts"]) <= set(certificate["spec"]["dnsNames"]), name
    for certificate in certificates.values():
        assert certificate["spec"]["issuerRef"]["kind"] in {"ClusterIssuer", "Issuer"}
