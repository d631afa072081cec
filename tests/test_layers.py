"""The package layers: every module sits in a layer of the import contract, and it holds."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sim", "agents", "environments", "steering")


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [name.strip() for layer in contract["layers"] for name in layer.replace(":", "|").split("|")]


def _modules() -> list[str]:
    found = []
    for package in PACKAGES:
        found.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            found.append(info.name)
    return found


def test_every_module_sits_in_a_layer():
    layers = _layers()
    # the package roots themselves are containers, not code (their __init__ may import down only)
    missing = [
        m for m in _modules() if m not in PACKAGES and not any(m == lay or m.startswith(lay + ".") for lay in layers)
    ]
    assert not missing, f"modules outside every layer of pyproject's import contract: {missing}"


def test_the_import_contract_holds():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
