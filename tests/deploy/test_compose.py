"""Static checks of compose.local.yaml: schema, references, environment, ports, observability.

Nothing here runs Docker; the file is parsed with PyYAML and checked against the Compose
specification schema vendored in tests/deploy/schemas/ (see its README for the source and licence).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from filepipe import config
from local.broker.config import parse_subscribers

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.local.yaml"
SCHEMA = ROOT / "tests" / "deploy" / "schemas" / "compose_spec.json"
NGINX = ROOT / "local" / "nginx.conf"
TEMPLATE = "functions/Dockerfile"  # every function image and the gateway's

# Compose service → the port the README / Procfile give it locally.
FUNCTIONS = {
    "presign": 8081,
    "process": 8082,
    "query": 8083,
    "notify": 8084,
    "webhooks": 8085,
    "gateway": 8086,
}
REQUIRED_ENV = (
    config.DATABASE_URL,
    config.REDIS_URL,
    config.AMQP_URL,
    config.S3_ENDPOINT_URL,
    config.S3_PUBLIC_ENDPOINT_URL,
    config.S3_BUCKET,
    config.S3_REGION,
    config.S3_ACCESS_KEY_ID,
    config.S3_SECRET_ACCESS_KEY,
    config.K_SINK,
    config.METRICS_PORT,
    config.OTLP_ENDPOINT,
    config.PORT,
)


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def environment(service: str) -> dict[str, str]:
    env = services()[service].get("environment", {})
    if isinstance(env, list):  # the list form, NAME=value
        env = dict(item.partition("=")[::2] for item in env)
    return {str(key): str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return dict(deps)


def build_args(service: str) -> dict[str, str]:
    args = services()[service]["build"].get("args", {})
    if isinstance(args, list):  # the list form, NAME=value
        args = dict(item.partition("=")[::2] for item in args)
    return {str(key): str(value) for key, value in args.items()}


def published_ports(service: str) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for port in services()[service].get("ports", []):
        host, _, container = str(port).rpartition(":")
        pairs.add((int(host), int(container)))
    return pairs


def test_parses_and_validates_against_the_compose_spec() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in jsonschema.Draft201909Validator(schema).iter_errors(compose())
    ]
    assert errors == []


def test_the_schema_catches_a_bad_file() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    bad = {"services": {"a": {"depends_on": {"b": {"condition": "whenever"}}, "bogus": 1}}}
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(bad))


def test_every_component_of_the_architecture_is_a_service() -> None:
    expected = {
        "minio",
        "minio-init",
        "postgres",
        "redis",
        "rabbitmq",
        "migrate",
        "broker",
        "nginx",
        "jaeger",
        "prometheus",
        "grafana",
        *FUNCTIONS,
    }
    assert expected <= set(services())


def test_depends_on_names_services_with_valid_conditions() -> None:
    names = set(services())
    for name, service in services().items():
        for dep, spec in depends_on(service).items():
            assert dep in names, f"{name} depends on unknown service {dep}"
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in services()[dep], f"{name} waits for {dep}'s health"
            if condition == "service_completed_successfully":
                assert services()[dep].get("restart", "no") == "no", f"{dep} is a one-off job"


def test_functions_wait_for_migrations_and_the_bucket() -> None:
    assert depends_on(services()["migrate"])["postgres"]["condition"] == "service_healthy"
    for name in FUNCTIONS:
        deps = depends_on(services()[name])
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["minio-init"]["condition"] == "service_completed_successfully", name
        assert "healthcheck" in services()[name], name


def test_every_build_points_at_an_existing_dockerfile() -> None:
    built = {name: s["build"] for name, s in services().items() if "build" in s}
    assert set(FUNCTIONS) | {"broker", "migrate"} <= set(built)
    for name, build in built.items():
        context = ROOT / build["context"]
        assert context.resolve() == ROOT, f"{name} builds from the repository root"
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']}"


def test_each_function_image_is_the_template_built_for_its_folder() -> None:
    for name in ("presign", "process", "query", "notify"):
        build = services()[name]["build"]
        assert build["dockerfile"] == TEMPLATE, name
        assert build["target"] == "function", name
        assert build_args(name) == {"FUNCTION": name, "TARGET": name}
        assert (ROOT / "functions" / name / "main.py").is_file(), name
        assert services()[name]["image"] == f"filepipe-{name}:local"
    # webhooks is the notify image serving its other target; migrate runs the presign image.
    assert services()["webhooks"]["build"] == services()["notify"]["build"]
    assert environment("webhooks")["FUNCTION_TARGET"] == "webhooks"
    assert services()["migrate"]["build"] == services()["presign"]["build"]
    assert services()["migrate"]["command"] == ["filepipe", "migrate"]


def test_the_gateway_is_the_template_gateway_stage_and_runs_its_command() -> None:
    gateway = services()["gateway"]
    assert gateway["build"]["dockerfile"] == TEMPLATE
    assert gateway["build"]["target"] == "gateway"
    assert build_args("gateway") == {"FUNCTION": "notify"}
    assert gateway["image"] == "filepipe-gateway:local"
    # The stage's CMD (python -m filepipe.notify.gateway) runs; so does filepipe.server in the
    # function images: no service but the migration job replaces the command.
    for name in FUNCTIONS:
        assert "command" not in services()[name], name


def test_function_targets_are_functions_of_the_built_main_py() -> None:
    for name in FUNCTIONS:
        target = environment(name).get("FUNCTION_TARGET")
        if target is None:
            continue
        source = ROOT / "functions" / build_args(name)["FUNCTION"] / "main.py"
        assert re.search(rf"^def {target}\(", source.read_text(encoding="utf-8"), re.M), name


def test_services_sharing_an_image_share_its_build() -> None:
    builds: dict[str, Any] = {}
    for name, service in services().items():
        if "build" in service:
            first = builds.setdefault(service["image"], service["build"])
            assert service["build"] == first, f"{name} builds {service['image']} differently"


def test_local_mounted_files_exist() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_environment(name: str) -> None:
    env = environment(name)
    missing = [var for var in REQUIRED_ENV if not env.get(var)]
    assert missing == []
    assert env[config.PORT] == str(FUNCTIONS[name])
    assert (FUNCTIONS[name], FUNCTIONS[name]) in published_ports(name)
    assert env[config.METRICS_PORT] == str(FUNCTIONS[name] + 1000)
    assert urlsplit(env[config.S3_ENDPOINT_URL]).netloc == "minio:9000"
    assert env[config.S3_PUBLIC_ENDPOINT_URL] == "http://localhost:9000"
    for var in (config.DATABASE_URL, config.REDIS_URL, config.AMQP_URL, config.K_SINK):
        host = urlsplit(env[var]).hostname
        assert host in services(), f"{name}: {var} names unknown host {host}"
    if name == "gateway":  # one process, like the Procfile's gateway: no multiprocess dir
        assert "PROMETHEUS_MULTIPROC_DIR" not in env
    else:  # gunicorn workers share their metrics through an empty per-container directory
        assert env["PROMETHEUS_MULTIPROC_DIR"] in services()[name].get("tmpfs", [])


def test_k_sink_is_the_broker_ingress() -> None:
    broker = environment("broker")
    port = broker["FILEPIPE_BROKER_PORT"]
    for name in FUNCTIONS:
        assert urlsplit(environment(name)[config.K_SINK]).netloc == f"broker:{port}"


def test_minio_credentials_and_bucket_match_the_functions() -> None:
    minio = environment("minio")
    env = environment("presign")
    assert minio["MINIO_ROOT_USER"] == env[config.S3_ACCESS_KEY_ID]
    assert minio["MINIO_ROOT_PASSWORD"] == env[config.S3_SECRET_ACCESS_KEY]
    init = "\n".join(services()["minio-init"]["command"])
    assert f"local/{env[config.S3_BUCKET]}" in init


def test_minio_publishes_to_the_fanout_exchange_the_broker_reads() -> None:
    minio = environment("minio")
    targets = {k.removeprefix("MINIO_NOTIFY_AMQP_ENABLE_") for k in minio if "AMQP_ENABLE_" in k}
    assert len(targets) == 1
    target = targets.pop()
    amqp = {
        k.removeprefix("MINIO_NOTIFY_AMQP_").removesuffix(f"_{target}"): v
        for k, v in minio.items()
        if k.startswith("MINIO_NOTIFY_AMQP_")
    }
    assert amqp["ENABLE"] == "on"
    assert urlsplit(amqp["URL"]).hostname == "rabbitmq"
    assert amqp["EXCHANGE"] == environment("broker")["FILEPIPE_S3_NOTIFY_EXCHANGE"]
    assert amqp["EXCHANGE"] == environment("process")[config.S3_NOTIFY_EXCHANGE]
    assert amqp["EXCHANGE_TYPE"] == "fanout"
    assert amqp["DURABLE"] == "on"
    assert amqp["DELIVERY_MODE"] == "2"
    assert amqp["PUBLISHER_CONFIRMS"] == "on"
    assert amqp["QUEUE_DIR"]
    init = "\n".join(services()["minio-init"]["command"])
    assert re.search(rf"mc event add \S+ arn:minio:sqs::{target}:amqp .*--event put", init)


def test_broker_subscribers_name_compose_services() -> None:
    env = environment("broker")
    assert env["FILEPIPE_BROKER_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    subscribers = parse_subscribers(env["FILEPIPE_SUBSCRIBERS"])
    assert {"process", "notify"} <= set(subscribers)
    for knative_name, url in subscribers.items():
        parts = urlsplit(url)
        assert parts.hostname in services(), f"{knative_name} → unknown host {parts.hostname}"
        assert parts.port == FUNCTIONS[str(parts.hostname)]
    mounts = [str(v) for v in services()["broker"].get("volumes", [])]
    assert f"./knative/eventing:{env['FILEPIPE_KNATIVE_DIR']}:ro" in mounts


def test_prometheus_targets_are_compose_services_and_metrics_ports() -> None:
    prometheus = yaml.safe_load((ROOT / "observability" / "prometheus.yml").read_text())
    metrics_ports = {name: environment(name).get(config.METRICS_PORT) for name in FUNCTIONS}
    metrics_ports["broker"] = environment("broker").get("FILEPIPE_BROKER_METRICS_PORT")
    targets = [
        target
        for job in prometheus["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert len(targets) == len(metrics_ports)
    for target in targets:
        host, _, port = target.rpartition(":")
        assert host in services(), target
        assert metrics_ports.get(host) == port, target
    mounts = [str(v) for v in services()["prometheus"]["volumes"]]
    assert "./observability/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_grafana_mounts_provisioning_and_dashboards_where_the_provider_looks() -> None:
    provider = yaml.safe_load(
        (ROOT / "observability/grafana/provisioning/dashboards/filepipe.yaml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    mounts = [str(v) for v in services()["grafana"]["volumes"]]
    assert f"./observability/grafana/dashboards:{path}:ro" in mounts
    assert "./observability/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    datasource = yaml.safe_load(
        (ROOT / "observability/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    url = urlsplit(datasource["datasources"][0]["url"])
    assert url.hostname in services()
    assert url.port is not None
    assert any(c == url.port for _, c in published_ports("prometheus"))


def test_nginx_routes_like_the_ingress() -> None:
    conf = NGINX.read_text(encoding="utf-8")
    assert re.search(r"listen\s+8080;", conf)
    assert (8080, 8080) in published_ports("nginx")
    routes = {"/uploads": "presign", "/files": "query", "/webhooks": "webhooks", "/ws": "gateway"}
    for path, service in routes.items():
        block = re.search(rf"location {re.escape(path)} \{{(.*?)\}}", conf, re.S)
        assert block, path
        assert f"http://{service}:{FUNCTIONS[service]}" in block.group(1), path
    ws = re.search(r"location /ws \{(.*?)\}", conf, re.S)
    assert ws
    assert "proxy_set_header Upgrade $http_upgrade" in ws.group(1)
    assert "proxy_set_header Connection $connection_upgrade" in ws.group(1)
    assert "proxy_http_version 1.1" in conf
    assert "local/nginx.conf" in str(services()["nginx"]["volumes"])


def test_make_compose_up() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "docker compose -f compose.local.yaml up --build" in makefile
