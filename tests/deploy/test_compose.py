"""Static checks of compose.local.yaml: schema, references, environment, ports, observability,
credentials.

Nothing here runs Docker; the file is parsed with PyYAML and checked against the Compose
specification schema vendored in tests/deploy/schemas/ (see its README for the source and licence).
Variables (``${VAR:?message}``) are interpolated as compose does, from ``.env.example`` with a
made-up value for each: every credential comes from ``.env``, none has a default, and each
service gets only the credentials it uses (``tests/deploy/credentials.py``). Only the nginx front
is published beyond 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
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
from filepipe.config import Settings
from filepipe.origins import AllowedOrigins
from local.broker.config import parse_subscribers
from local.front import ROUTES
from tests.deploy.credentials import CREDENTIALS, EVENT_TOKEN, EVENT_TOKEN_RECEIVERS, USES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.local.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
FRONT = "nginx"
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
    config.S3_ENDPOINT_URL,
    config.S3_PUBLIC_ENDPOINT_URL,
    config.S3_BUCKET,
    config.S3_REGION,
    config.K_SINK,
    config.METRICS_PORT,
    config.OTLP_ENDPOINT,
    config.PORT,
)
"""What every function is given besides its credentials."""
KNOWN_DEFAULTS = (
    "guest:guest",
    "postgres:postgres",
    "minioadmin",
    "filepipe-local-secret",
    "local-development-cursor-secret",
    "POSTGRES_HOST_AUTH_METHOD",
    "admin:admin",
)
"""Credentials images ship or this file used to: none may appear."""
SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN|_KEYS$|AUTH$")
"""Environment variables whose value is a secret itself."""
_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[?-])?(?P<arg>[^}]*)\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A required variable (``${VAR:?message}``) is unset or empty."""


def interpolate(value: str, env: dict[str, str]) -> str:
    """``value`` with its variables replaced, as compose interpolates a file: ``$$`` is a
    literal ``$``; ``${VAR:?msg}`` (``${VAR?msg}``) fails when VAR is unset or empty (unset);
    ``${VAR:-default}`` (``${VAR-default}``) falls back likewise; ``${VAR}`` and ``$VAR`` are
    empty when unset."""

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        present = env.get(name)
        missing = present is None or (op.startswith(":") and present == "")
        if op.endswith("?") and missing:
            raise MissingVariable(f"{name}: {arg}")
        if op.endswith("-") and missing:
            return arg
        return present or ""

    return _VARIABLE.sub(substitute, value)


def example_env() -> dict[str, str]:
    """``.env.example``'s variables with their (empty) values."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def made_up_env() -> dict[str, str]:
    """A value for every variable of ``.env.example``, distinct and URL-safe, shaped as the
    README's generator shapes them (``*_KEYS``: a Fernet key)."""
    values = {}
    for name in example_env():
        digest = hashlib.sha256(name.encode()).digest()
        if name.endswith("_KEYS"):
            values[name] = base64.urlsafe_b64encode(digest).decode()
        else:
            values[name] = digest.hex()[:48]
    return values


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def raw_environment(service: str) -> dict[str, str]:
    """``service``'s environment as written (variables not interpolated)."""
    env = services()[service].get("environment", {})
    if isinstance(env, list):  # the list form, NAME=value
        env = dict(item.partition("=")[::2] for item in env)
    return {str(key): str(value) for key, value in env.items()}


def environment(service: str) -> dict[str, str]:
    """``service``'s environment as compose gives it, with ``made_up_env()`` as ``.env``."""
    values = made_up_env()
    return {key: interpolate(value, values) for key, value in raw_environment(service).items()}


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


def port_bindings(service: str) -> set[tuple[str, int, int]]:
    """``(host address, host port, container port)`` of each short-syntax port ("" = all)."""
    bindings: set[tuple[str, int, int]] = set()
    for port in services()[service].get("ports", []):
        parts = str(port).split(":")
        address = parts[0] if len(parts) == 3 else ""
        bindings.add((address, int(parts[-2]), int(parts[-1])))
    return bindings


def published_ports(service: str) -> set[tuple[int, int]]:
    return {(host, container) for _, host, container in port_bindings(service)}


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
    assert services()["migrate"]["command"] == ["filepipe-admin", "migrate"]


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
    assert ("127.0.0.1", FUNCTIONS[name], FUNCTIONS[name]) in port_bindings(name)
    assert env[config.METRICS_PORT] == str(FUNCTIONS[name] + 1000)
    assert urlsplit(env[config.S3_ENDPOINT_URL]).netloc == "minio:9000"
    assert env[config.S3_PUBLIC_ENDPOINT_URL] == "http://localhost:9000"
    for var in (config.DATABASE_URL, config.REDIS_URL, config.AMQP_URL, config.K_SINK):
        if var in env:
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
    for name in ("presign", "process"):
        env = environment(name)
        assert minio["MINIO_ROOT_USER"] == env[config.S3_ACCESS_KEY_ID]
        assert minio["MINIO_ROOT_PASSWORD"] == env[config.S3_SECRET_ACCESS_KEY]
    init = "\n".join(services()["minio-init"]["command"])
    assert f"local/{environment('presign')[config.S3_BUCKET]}" in init
    assert f"mc alias set local http://minio:9000 {minio['MINIO_ROOT_USER']} " in init
    assert environment("minio-init")["MINIO_ROOT_PASSWORD"] == minio["MINIO_ROOT_PASSWORD"]


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


def test_browsers_of_the_same_origins_may_call_the_functions_the_gateway_and_minio() -> None:
    origins = environment("gateway")[config.ALLOWED_ORIGINS]
    assert AllowedOrigins(origins.split(",")).allows("http://localhost:5173")
    for name in ("presign", "query", "webhooks"):
        assert environment(name)[config.ALLOWED_ORIGINS] == origins
    assert environment("minio")["MINIO_API_CORS_ALLOW_ORIGIN"] == origins


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
    for path, service in ROUTES:  # local.front's, the same as the ingress's
        block = re.search(rf"location {re.escape(path)} \{{(.*?)\}}", conf, re.S)
        assert block, path
        assert f"http://{service}:{FUNCTIONS[service]}" in block.group(1), path
    ws = re.search(r"location /ws \{(.*?)\}", conf, re.S)
    assert ws
    assert "proxy_set_header Upgrade $http_upgrade" in ws.group(1)
    assert "proxy_set_header Connection $connection_upgrade" in ws.group(1)
    assert "proxy_http_version 1.1" in conf
    assert "local/nginx.conf" in str(services()["nginx"]["volumes"])
    roots = set(re.findall(r"root (\S+);", conf))
    assert len(roots) == 1 and f"./web:{roots.pop()}:ro" in services()["nginx"]["volumes"]
    assert re.search(r"location = / \{[^}]*try_files /index.html =404;", conf)
    assert conf.count('add_header Cache-Control "no-cache" always;') == 2


def test_make_compose_up() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "docker compose -f compose.local.yaml up --build" in makefile


def test_only_the_front_listens_on_every_interface() -> None:
    published = {name for name, service in services().items() if service.get("ports")}
    assert FRONT in published
    for name in published:
        for address, host, container in port_bindings(name):
            if name == FRONT:
                assert (address, host, container) == ("", 8080, 8080)
            else:
                assert address == "127.0.0.1", f"{name} publishes {host} beyond loopback"
    long_form = [
        name
        for name, service in services().items()
        for port in service.get("ports", [])
        if not isinstance(port, str)
    ]
    assert long_form == [], "use the short syntax, ADDRESS:HOST:CONTAINER"


def _strings(node: object) -> list[str]:
    """Every string in the parsed file (keys and values, fragments included): what compose
    interpolates."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def _variables() -> list[re.Match[str]]:
    return [m for s in _strings(compose()) for m in _VARIABLE.finditer(s) if m[0] != "$$"]


def test_every_variable_is_required_and_listed_in_env_example() -> None:
    used = _variables()
    assert used
    for match in used:
        assert match["bare"] is None, f"{match[0]}: write ${{NAME:?message}}"
        assert match["op"] == ":?", f"{match[0]}: every variable is required, no default"
        assert ".env" in match["arg"], f"{match[0]}: the message says where to set it"
    example = example_env()
    assert {m["name"] for m in used} == set(example)
    assert set(example.values()) == {""}, ".env.example must not hold a usable credential"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored


def test_compose_refuses_to_start_without_each_variable() -> None:
    full = made_up_env()
    for name in full:
        partial = {**full, name: ""}
        with pytest.raises(MissingVariable, match=name):
            for service in services().values():
                for value in (service.get("environment") or {}).values():
                    interpolate(str(value), partial)


def test_no_default_credentials() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for default in KNOWN_DEFAULTS:
        assert default not in text, default
    for name in services():
        for variable, value in raw_environment(name).items():
            if "://" in value:
                password = urlsplit(interpolate(value, made_up_env())).password
                if password is not None:
                    assert password in made_up_env().values(), f"{name}: {variable}"
            if SECRET_NAME.search(variable):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value), f"{name}: {variable}"


def test_each_service_gets_only_the_credentials_it_uses() -> None:
    expected = {name: set(uses) for name, uses in USES.items()}
    for name in EVENT_TOKEN_RECEIVERS:
        expected[name].add(EVENT_TOKEN)
    expected["migrate"] = {config.DATABASE_URL}
    expected["broker"] = {config.AMQP_URL, EVENT_TOKEN}
    for name in services():
        got = set(raw_environment(name)) & CREDENTIALS
        assert got == expected.get(name, set()), (name, got ^ expected.get(name, set()))


def test_credentials_agree_with_the_services_they_open() -> None:
    postgres, rabbitmq, redis = (
        environment("postgres"),
        environment("rabbitmq"),
        environment("redis"),
    )
    for name in services():
        env = environment(name)
        if config.DATABASE_URL in env:
            url = urlsplit(env[config.DATABASE_URL])
            assert url.username == postgres["POSTGRES_USER"], name
            assert url.password == postgres["POSTGRES_PASSWORD"], name
            assert url.path == "/" + postgres["POSTGRES_DB"], name
        if config.REDIS_URL in env:
            assert urlsplit(env[config.REDIS_URL]).password == redis["REDIS_PASSWORD"], name
        amqp_urls = [env.get(config.AMQP_URL), env.get("MINIO_NOTIFY_AMQP_URL_FILEPIPE")]
        for amqp in filter(None, amqp_urls):
            assert urlsplit(amqp).username == rabbitmq["RABBITMQ_DEFAULT_USER"], name
            assert urlsplit(amqp).password == rabbitmq["RABBITMQ_DEFAULT_PASS"], name
    tokens = {environment(name)[EVENT_TOKEN] for name in (*EVENT_TOKEN_RECEIVERS, "broker")}
    assert len(tokens) == 1


def test_redis_requires_its_password() -> None:
    redis = services()["redis"]
    script = "\n".join(redis["command"])
    assert "requirepass" in script and "$$REDIS_PASSWORD" in script
    assert "redis-server /tmp/redis.conf" in script
    env = environment("redis")
    assert env["REDISCLI_AUTH"] == env["REDIS_PASSWORD"]  # the health check authenticates
    assert redis.get("user") not in (None, "root", "0")


def test_the_interpolation_follows_compose() -> None:
    assert interpolate("a$$b ${X:?set X} ${Y:-d} ${Z-e}", {"X": "1", "Z": ""}) == "a$b 1 d "
    with pytest.raises(MissingVariable):
        interpolate("${X:?set X}", {"X": ""})
    assert interpolate("${X?set X}", {"X": ""}) == ""


@pytest.mark.parametrize("name", sorted({*FUNCTIONS, "migrate"}))
def test_each_function_environment_passes_the_start_up_checks(name: str) -> None:
    settings = Settings.from_env(environment(name))
    assert settings.database_url.startswith("postgresql://filepipe:")
