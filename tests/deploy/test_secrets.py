"""Each Knative workload is given exactly the keys of ``filepipe-secrets`` it uses
(``tests/deploy/credentials.py``), one ``secretKeyRef`` each, and no credential reaches a pod any
other way (the ConfigMap, a literal, a whole-Secret ``envFrom`` or volume)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.credentials import CREDENTIALS, SECRET_KEYS, USES
from tests.deploy.manifests import BUILDS, KNATIVE, Doc, build, of, workloads

SECRET = "filepipe-secrets"


def secret_refs(container: Doc) -> dict[str, str]:
    """Variable → key of every ``secretKeyRef`` of ``container`` (on the Secret named so)."""
    refs = {}
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            assert ref["name"].startswith(SECRET), entry  # dev: the generated name has a hash
            refs[entry["name"]] = ref["key"]
    return refs


@pytest.mark.parametrize("target", BUILDS)
def test_each_workload_gets_exactly_the_secrets_it_uses(target: str) -> None:
    pods = workloads(build(target))
    assert set(pods) == set(USES)
    for name, template in pods.items():
        (container,) = template["spec"]["containers"]
        refs = secret_refs(container)
        assert set(refs) == USES[name], (name, set(refs) ^ USES[name])
        for variable, key in refs.items():
            assert SECRET_KEYS[key] == variable, (name, key)
        assert all("secretRef" not in source for source in container.get("envFrom", [])), name
        volumes = template["spec"].get("volumes", [])
        assert all("secret" not in v and "projected" not in v for v in volumes), name
        literals = {e["name"] for e in container.get("env", []) if "valueFrom" not in e}
        assert not literals & CREDENTIALS, name


@pytest.mark.parametrize("target", BUILDS)
def test_the_configmap_holds_no_credential(target: str) -> None:
    for configmap in of(build(target), "ConfigMap").values():
        data = configmap["data"]
        assert not set(data) & CREDENTIALS
        for variable, value in data.items():
            if "://" in value:
                assert urlsplit(value).password is None, variable


def test_dev_generates_the_secret_from_an_ignored_file_and_prod_expects_it() -> None:
    (dev,) = of(build("overlays/dev"), "Secret").values()
    assert set(dev["data"]) == set(SECRET_KEYS)
    assert not of(build("overlays/prod"), "Secret")
    assert not of(build("base"), "Secret")
    ignored = (KNATIVE / "overlays" / "dev" / ".gitignore").read_text().split()
    assert "secrets.env" in ignored


def _example_keys(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs = [line.partition("=") for line in lines if line.strip() and not line.startswith("#")]
    return {key: value for key, _, value in pairs}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_examples_name_every_key_and_no_value(overlay: str) -> None:
    example = _example_keys(KNATIVE / "overlays" / overlay / "secrets.env.example")
    assert set(example) == set(SECRET_KEYS)
    assert set(example.values()) == {""}, "an example must not ship a usable credential"


def test_prod_reaches_redis_over_tls() -> None:
    text = (KNATIVE / "overlays" / "prod" / "secrets.env.example").read_text(encoding="utf-8")
    assert "rediss://:" in text and "redis://" not in text


def test_the_check_catches_an_extra_secret() -> None:
    template = workloads(build("base"))["query"]
    (container,) = template["spec"]["containers"]
    extra = {"secretKeyRef": {"name": SECRET, "key": "webhook-secret-keys"}}
    leaked = {**container, "env": [*container["env"], {"name": "X", "valueFrom": extra}]}
    assert set(secret_refs(leaked)) != USES["query"]
