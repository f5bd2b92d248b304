"""The dependency locks (issue 14): every venv on disk matches its lock, and every lock still covers its inputs.

A venv that drifted from its lock (a lock refreshed but the venv not reinstalled, a package installed by hand) fails
here, before CI does on a new machine. A lock that no longer satisfies pyproject.toml or its .in file (an input
changed, `make lock` not run) fails here too.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "locks"
# venv → the locks it is installed from, in install order (a later one overrides an earlier one's version).
VENVS = {
    ".venv": ("core", "core-nodeps"),
    ".venv-nemo": ("nemo",),
    ".venv-whisperx": ("whisperx", "whisperx-nodeps"),
    ".venv-chatterbox": ("chatterbox", "chatterbox-nodeps"),
    ".venv-clients": ("clients",),
}
# Venvs without torch (and without voxloop): the client compatibility suite's, whose lock is compiled from its .in
# file alone (no pyproject.toml: the server runs from .venv).
NO_TORCH = {".venv-clients"}
STANDALONE_LOCKS = {"clients"}
# The locks compiled from locks/core.in and pyproject.toml with these extras (the Makefile's `lock`); only they keep
# llama-cpp-python (locks/extras.exclude drops it from the GPU extras' locks).
CORE_IN_LOCKS = {"core": ("test", "funasr"), "image": ("otel", "funasr"), "image-ray": ("otel", "funasr", "ray")}
# Installed outside the locks on purpose: voxloop itself (--no-deps -e .), torch (the CPU wheel, pinned in
# pyproject.toml and the Makefile; left out of the locks so a CUDA image can bring its own build), the venv's tools.
UNLOCKED = {"voxloop", "torch", "pip", "setuptools", "wheel"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def read_lock(name: str) -> dict[str, str]:
    pins = {}
    for line in (LOCKS / f"{name}.txt").read_text().splitlines():
        if match := PIN.match(line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def expected(venv: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for lock in VENVS[venv]:
        pins.update(read_lock(lock))
    return pins


def installed(venv: Path) -> dict[str, str]:
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    out = subprocess.run([venv / "bin" / "python", "-c", code], capture_output=True, text=True, check=True).stdout
    return {canonicalize_name(name): version for name, version in json.loads(out).items()}


def torch_pin() -> str:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (spec,) = [r for r in map(Requirement, extras["funasr"]) if r.name == "torch"]
    return str(spec.specifier).removeprefix("==")


@pytest.mark.parametrize("venv", sorted(VENVS))
def test_installed_venv_matches_its_lock(venv: str) -> None:
    path = ROOT / venv
    if not (path / ".installed").exists():
        pytest.skip(f"{venv} is not installed here")
    want, have = expected(venv), installed(path)
    drift = [f"{name}: locked {version}, installed {have.get(name, 'nothing')}"
             for name, version in sorted(want.items()) if have.get(name) != version]
    extra = sorted(set(have) - set(want) - UNLOCKED)
    assert not drift, f"{venv} drifted from its lock (run `make install` or the venv's target):\n" + "\n".join(drift)
    assert not extra, f"{venv} has packages its lock does not name: {extra}"
    if venv in NO_TORCH:
        assert "torch" not in have, f"{venv} should not hold torch"
        return
    # torch's local label (+cpu) is the build, not the version.
    assert Version(have["torch"]).base_version == torch_pin(), f"{venv}: torch {have['torch']}, pinned {torch_pin()}"


def lock_inputs(name: str) -> list[Requirement]:
    """The requirements a lock was compiled from: its .in file (following -r) and, for the resolved sets,
    pyproject.toml's dependencies with the extras the Makefile names."""
    def read(path: Path) -> list[Requirement]:
        reqs = []
        for raw in path.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("-r "):
                reqs += read(path.parent / line[3:].strip())
            elif line:
                reqs.append(Requirement(line))
        return reqs

    source = LOCKS / f"{'core' if name in CORE_IN_LOCKS else name}.in"
    reqs = read(source)
    if not name.endswith("-nodeps") and name not in STANDALONE_LOCKS:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        extras = CORE_IN_LOCKS.get(name, ())
        deps = [Requirement(d) for d in project["dependencies"]]
        deps += [Requirement(d) for extra in extras for d in project["optional-dependencies"][extra]]
        if name not in CORE_IN_LOCKS:
            deps = [d for d in deps if d.name != "llama-cpp-python"]  # locks/extras.exclude
        reqs += [d for d in deps if canonicalize_name(d.name) != "voxloop"]
    return reqs


@pytest.mark.parametrize("lock", sorted(p.stem for p in LOCKS.glob("*.txt")))
def test_lock_satisfies_its_inputs(lock: str) -> None:
    pins = read_lock(lock)
    assert pins, f"locks/{lock}.txt pins nothing"
    stale = []
    for req in lock_inputs(lock):
        name = canonicalize_name(req.name)
        if name in UNLOCKED:
            continue
        if name not in pins or not req.specifier.contains(pins[name], prereleases=True):
            stale.append(f"{req} (locked: {pins.get(name, 'absent')})")
    assert not stale, f"locks/{lock}.txt no longer satisfies its inputs; run `make lock`:\n" + "\n".join(stale)


def test_every_lock_is_hashed() -> None:
    for path in LOCKS.glob("*.txt"):
        text = path.read_text()
        assert text.count("==") <= text.count("--hash=sha256:"), f"{path.name} has a pin without a hash"


def test_readme_clients_table_names_the_locked_versions() -> None:
    """README "Clients tested" says which version of each client the suite ran: the one locks/clients.txt pins."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Clients tested", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ") and "`" in line]
    assert rows, "no client rows in README's Clients tested table"
    pins = read_lock("clients")
    for client, version in rows:
        package = re.search(r"`([^`\[]+)", client)[1]  # the PyPI name, first code span, extras dropped
        assert pins.get(canonicalize_name(package)) == version.strip(), (
            f"README says {package} {version.strip()}, locks/clients.txt pins {pins.get(canonicalize_name(package))}")
