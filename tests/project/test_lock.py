"""The lock: constraints.txt pins every dependency, the environment is the pinned one, and the
README/Makefile/CI install with it (issue 19, item 11)."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not an exact pin (NAME==VERSION)"
        out[canonicalize_name(name)] = version.strip()
    return out


def direct_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_every_direct_dependency_is_pinned_inside_its_range():
    pinned = pins()
    for req in direct_dependencies():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is a dependency but constraints.txt does not pin it"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {req.name}=={pinned[name]}, outside pyproject's {req.specifier}"


def test_the_installed_environment_is_the_pinned_one():
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    for name, version in pins().items():
        assert name in installed, f"{name}=={version} is pinned but not installed"
        # torch's CPU build carries a local label (2.13.0+cpu), which ==2.13.0 admits (PEP 440)
        assert Version(installed[name]).public == Version(version).public, \
            f"{name}: installed {installed[name]}, pinned {version}"


@pytest.mark.parametrize("path", ["README.md", "Makefile", ".ci/run"])
def test_install_commands_use_the_lock(path):
    text = (ROOT / path).read_text()
    installs = [line for line in text.splitlines() if re.search(r"pip(\s+\S+)*\s+install\b.*\.\[test\]", line)]
    assert installs, f"{path} has no install command"
    for line in installs:
        assert "-c constraints.txt" in line, f"{path}: {line.strip()!r} installs without the lock"
