"""Installing Chainproof prints no warning of ours: the package's build (setuptools reading pyproject.toml, finding
the packages and their data) says nothing a user would have to read. pip's own notes (an index location it
ignores, a newer pip) are pip's, not ours."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "api", "cli", "certificates")
PIP_OWN = ("WARNING: Location ", "[notice]", "WARNING: There was an error checking the latest version of pip")


def test_building_the_package_prints_no_warning_of_ours(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    # as `make` installs it: pip, with the build backend in an isolated environment
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(source), "-w", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    if built.returncode != 0 and "No matching distribution found for setuptools" in built.stderr:
        pytest.skip("no package index reachable for pip's isolated build (setuptools): cannot build here")
    assert built.returncode == 0, built.stderr[-3000:]
    said = [line for line in (built.stdout + built.stderr).splitlines() if line.strip()]
    ours = [line for line in said if not line.lstrip().startswith(PIP_OWN)]
    assert ours == [], "\n".join(ours)
    # and the wheel holds what the server serves: templates and static files
    (wheel,) = (tmp_path / "out").glob("chainproof-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"api/templates/verify.html", "api/static/certificate.js", "api/static/verify.js"} <= names
    assert "ledger/migrations/script.py.mako" in names
    assert "ledger/epcis/schema/EPCIS-JSON-Schema.json" in names
