"""The locked install: requirements.lock covers what edgec needs, within pyproject.toml's
bounds, and the environment the tests run in is exactly that lock."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import REPO

LOCK = REPO / "requirements.lock"
#: The extras scripts/setup.sh installs.
EXTRAS = ("torch", "dev", "qonnx")
LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][A-Za-z0-9.]*)$")


def locked() -> dict[str, Version]:
    """``{canonical name: version}`` from requirements.lock (comments skipped)."""
    versions = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f"requirements.lock: '{line}' is not NAME==VERSION (a local label or an editable line?)"
        versions[canonicalize_name(match["name"])] = Version(match["version"])
    return versions


def _requirements(distribution: str, extras: tuple[str, ...] = ()) -> list[Requirement]:
    """The requirements of an installed ``distribution`` that apply here with ``extras``."""
    found = []
    for text in metadata.requires(distribution) or []:
        requirement = Requirement(text)
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
            found.append(requirement)
    return found


def test_the_lock_is_sorted_and_has_one_line_per_package():
    names = [line.split("==")[0] for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    assert len(names) == len({canonicalize_name(n) for n in names})
    assert names == sorted(names, key=str.upper)  # as scripts/lock.sh sorts: LC_ALL=C sort -f
    assert {"pip", "setuptools", "torch", "numpy", "onnx", "onnxruntime", "brevitas", "qonnx", "onnxoptimizer"} \
        <= set(locked())


def test_the_lock_holds_every_dependency_of_edgec_within_the_declared_bounds():
    """Walks edgec's requirements (with the installed extras) and theirs, transitively."""
    versions = locked()
    pending, seen = _requirements("edgec", EXTRAS), set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        assert name in versions, f"{requirement} is needed but not locked: rerun scripts/lock.sh"
        assert requirement.specifier.contains(versions[name], prereleases=True), \
            f"the lock has {name}=={versions[name]}, which does not satisfy {requirement}: rerun scripts/lock.sh"
        if name not in seen:
            seen.add(name)
            pending.extend(_requirements(requirement.name, tuple(requirement.extras)))


def _installed_version(name: str) -> str | None:
    """The public version of ``name`` that an import resolves to: the first on sys.path.

    Not a scan of every distribution: once something imports setuptools, its vendored copies
    (``setuptools/_vendor/*.dist-info``, e.g. an older packaging or zipp) are on sys.path
    too, after site-packages, and shadow nothing.
    """
    try:
        return Version(metadata.version(name)).public
    except metadata.PackageNotFoundError:
        return None


def test_the_environment_is_the_lock():
    """What scripts/setup.sh installed is exactly what requirements.lock says."""
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        pytest.skip("not running in the project's .venv made by scripts/setup.sh")
    differing = {name: (str(version), _installed_version(name))
                 for name, version in locked().items() if _installed_version(name) != str(version)}
    assert not differing, f"installed versions differ from requirements.lock (locked, installed): {differing}"
