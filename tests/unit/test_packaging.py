"""Packaging metadata setuptools accepts without deprecation warnings, and every data file of
the package (Lua scripts, templates, assets) in the built distribution."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_expression_without_license_classifiers() -> None:
    """setuptools >= 77 deprecates the license table and License :: classifiers, and printed
    that warning three times per install (metadata, requirements, build)."""
    project = PYPROJECT["project"]
    assert isinstance(project["license"], str)
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]
    assert all((ROOT / name).is_file() for name in project["license-files"])
    assert int(PYPROJECT["build-system"]["requires"][0].split(">=")[1].split(".")[0]) >= 77


def test_every_data_file_of_the_package_is_declared() -> None:
    package = ROOT / "src" / "celeriac"
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["celeriac"]
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts]
    assert data
    missing = [f for f in data if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert missing == [], "add these to [tool.setuptools.package-data]"
