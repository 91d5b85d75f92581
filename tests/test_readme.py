"""The README tells the truth about the settings and stays a front door."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readmes_settings_table_is_the_taps():
    done = subprocess.run(
        [sys.executable, "scripts/readme_settings.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_setting_of_the_tap_is_in_the_readme():
    from tap_mokapen.config import KNOWN_SETTINGS

    readme = (ROOT / "README.md").read_text()
    assert [name for name in sorted(KNOWN_SETTINGS) if f"| {name} |" not in readme] == []


def test_the_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_the_python_versions_the_readme_names_are_the_declared_ones():
    import tomllib

    declared = {
        line.rsplit("::", 1)[1].strip()
        for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
        if line.startswith("Programming Language :: Python :: 3.")
    }
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"Python (3\.\d+)", readme))
    named |= set(re.findall(r"Python 3\.\d+(?:,| or) (3\.\d+)", readme))
    named |= set(re.findall(r"Python 3\.\d+, 3\.\d+(?:,| or| and) (3\.\d+)", readme))
    assert named == declared, (named, declared)
