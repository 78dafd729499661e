"""Packaging (issue 14): one version source, a changelog, and a set-up that prints nothing alarming."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from clikit import run
from packet import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_one_version_source_and_a_changelog(tmp_path):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "packet.__version__"}
    # The installed console script itself (the other command-line tests fork theirs from one server).
    assert run(["--version"], cwd=tmp_path, fresh=True).out.strip() == f"imr-packet {__version__}"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {__version__}" in changelog and "Output bytes" in changelog


@pytest.mark.slow
def test_building_the_package_is_quiet_and_ships_every_room_and_the_rules(tmp_path):
    source = tmp_path / "source"  # a copy: building leaves build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "packet", source / "packet", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    # pip's own notes about this machine's package index locations are not ours; nothing else may show.
    ours = [line for line in (done.stdout + done.stderr).splitlines()
            if line.strip() and "Location 'file:" not in line]
    assert ours == [], ours
    wheel = next(tmp_path.glob("imr_packet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "packet/defaults/rules.toml" in names
    rooms = {p.name for p in (ROOT / "packet").iterdir() if (p / "__init__.py").is_file()}
    assert {f"packet/{room}/__init__.py" for room in rooms} <= set(names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
