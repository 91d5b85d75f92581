"""A release has one version: pyproject.toml's, which both distributions, the tap's
--version, --about and User-Agent give, and CHANGELOG.md's newest release names."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from tap_mokapen.tap import TapMokapen
from tests.helpers import about_tap

ROOT = Path(__file__).resolve().parent.parent
RELEASE_HEADING = re.compile(r"^## (\S+) - (\d{4}-\d{2}-\d{2})$", re.MULTILINE)


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_both_distributions_have_the_version_of_pyproject():
    assert version("tap-mokapen") == project_version()
    # The sandbox declares none of its own: it reads the tap's (sandbox/pyproject.toml).
    sandbox = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())
    assert "version" not in sandbox["project"] and sandbox["project"]["dynamic"] == ["version"]
    assert version("mokapen-sandbox") == project_version()


def test_the_tap_says_its_version_in_about_version_and_user_agent():
    about = about_tap()
    assert about["version"] == project_version()
    tap = TapMokapen(config={"organization_id": 849}, validate_config=False)
    assert tap.user_agent == f"tap-mokapen/{project_version()}"
    assert TapMokapen.plugin_version == project_version()


def test_the_changelogs_newest_release_is_this_version_under_an_unreleased_heading():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## .*$", changelog, re.MULTILINE)
    assert headings[0] == "## Unreleased"
    releases = RELEASE_HEADING.findall(changelog)
    assert releases, "no release section (## <version> - <YYYY-MM-DD>)"
    assert f"## {releases[0][0]} - {releases[0][1]}" == headings[1]
    assert releases[0][0] == project_version()
    # Newest first, each version once.
    dates = [date for _, date in releases]
    assert dates == sorted(dates, reverse=True)
    assert len({v for v, _ in releases}) == len(releases)


def test_every_install_line_in_the_docs_names_this_version():
    """A release bumps the version in pyproject.toml; this finds the install lines to bump."""
    pinned = re.compile(r"(?:tap-mokapen|mokapen-sandbox)(?:==|@v)(\d[\w.]*\w)")
    found = {
        (path.name, match)
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for match in pinned.findall(path.read_text())
    }
    assert {name for name, _ in found} >= {"README.md", "meltano.md"}
    assert {(name, v) for name, v in found if v != project_version()} == set()
