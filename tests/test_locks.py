"""Every install is the same install: the hashed locks are current, complete and used.

The locks (requirements.txt, requirements-dev.txt) are made by `make lock`
(scripts/lock.py) from the short inputs (requirements.in, requirements-dev.in).
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys
from pathlib import Path

import pytest

from scripts.lock import DEV, LOCKS, RUNTIME, Lock
from tests.conftest import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """Package name -> version for every `name==version` line of a requirements file."""
    return {normalize(name): version for name, version in PIN.findall(path.read_text())}


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.output)
def test_lock_was_made_from_the_inputs_as_they_are(lock: Lock) -> None:
    assert lock.recorded_digest() is not None, f"{lock.output} has no input digest"
    assert lock.is_current(), (
        f"{', '.join(lock.inputs)} changed since {lock.output} was made: run `make lock`"
    )


def test_editing_an_input_without_relocking_is_caught(tmp_path: Path) -> None:
    for name in {*RUNTIME.inputs, *DEV.inputs, RUNTIME.output, DEV.output}:
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    assert RUNTIME.is_current(tmp_path) and DEV.is_current(tmp_path)
    with (tmp_path / "requirements.in").open("a") as edited:
        edited.write("six==1.16.0\n")
    # Both locks read requirements.in, so both are stale now.
    assert not RUNTIME.is_current(tmp_path)
    assert not DEV.is_current(tmp_path)


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.output)
def test_every_pinned_input_is_locked_at_that_version(lock: Lock) -> None:
    locked = pins(REPO_ROOT / lock.output)
    for source in lock.inputs:
        for name, version in pins(REPO_ROOT / source).items():
            assert locked.get(name) == version, f"{source} pins {name}=={version}"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.output)
def test_every_locked_package_has_hashes(lock: Lock) -> None:
    text = (REPO_ROOT / lock.output).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert len(entries) == len(pins(REPO_ROOT / lock.output))
    for entry in entries:
        assert "--hash=sha256:" in entry, f"no hash for {entry.splitlines()[0]}"


def test_the_runtime_set_has_the_same_versions_in_both_locks() -> None:
    runtime, dev = pins(REPO_ROOT / RUNTIME.output), pins(REPO_ROOT / DEV.output)
    assert runtime and all(dev.get(name) == version for name, version in runtime.items())


def test_the_venv_holds_only_what_the_dev_lock_names() -> None:
    locked = pins(REPO_ROOT / DEV.output)
    installed = {
        normalize(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[p for p in sys.path if p])
        if dist.metadata["Name"]
    }
    unnamed = sorted(set(installed) - set(locked))
    assert not unnamed, f"installed but not in {DEV.output} (add to an input, `make lock`)"
    drifted = {name: v for name, v in installed.items() if locked[name] != v}
    assert not drifted, f"installed at other versions than {DEV.output}: {drifted}"


def test_installs_check_hashes_and_the_client_installs_from_its_lock() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    installs = re.findall(r"pip install[^\n]*", makefile)
    assert installs and all("--require-hashes -r requirements-dev.txt" in i for i in installs)
    assert "npm ci" in makefile
    # What the project runs: never `npm install`, which may move the lock.
    runs = [
        REPO_ROOT / "Makefile",
        REPO_ROOT / ".ci" / "run",
        REPO_ROOT / "client" / "package.json",
    ]
    runs += [*(REPO_ROOT / "scripts").glob("*"), *(REPO_ROOT / "client" / "scripts").glob("*")]
    for path in runs:
        if path.is_file():
            assert not re.search(r"npm (install|i)\b", path.read_text()), f"{path.name}"
    # What the docs tell a person to run for the project (adding the client to another app
    # with `npm i ../owned-analytics/client` is that app's own install).
    docs = [REPO_ROOT / "README.md", REPO_ROOT / "client" / "README.md"]
    for path in [*docs, *(REPO_ROOT / "docs").glob("*.md")]:
        assert "npm install" not in path.read_text(), f"{path.name} says npm install"
