"""The Meltano plugin definitions shipped in meltano/ keep the Meltano Hub's rules for a
plugin definition (its extractor and loader schemas), so that they could be published
as they are and `meltano add --from-ref` takes them offline.

The rules are the Hub's, as its schemas stated them when this was written: the keys a
definition and a setting may have, the keys it must have, and the values of kind,
capabilities, maintenance_status and quality.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

REQUIRED = {"name", "namespace", "variant", "label"}
COMMON_KEYS = {
    "name", "namespace", "variant", "label", "description", "pip_url", "executable",
    "python", "settings", "settings_group_validation", "docs", "repo", "logo_url",
    "hidden", "commands", "requires", "supported_python_versions", "log_parser",
    "maintenance_status", "quality", "domain_url", "keywords", "definition",
    "next_steps", "settings_preamble", "usage", "prereq", "capabilities",
}  # fmt: skip
ALLOWED_KEYS = {
    "extractors": COMMON_KEYS | {"metadata", "schema", "select"},
    "loaders": COMMON_KEYS | {"dialect", "target_schema"},
}
CAPABILITIES = {
    "extractors": {
        "properties", "catalog", "discover", "state", "about", "stream-maps",
        "schema-flattening", "activate-version", "batch", "test", "log-based",
        "structured-logging",
    },
    "loaders": {
        "about", "stream-maps", "activate-version", "batch", "soft-delete", "hard-delete",
        "datatype-failsafe", "schema-flattening", "target-schema", "validate-records",
        "structured-logging",
    },
}  # fmt: skip
SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "env", "value_processor", "value_post_processor", "oauth", "options",
    "docs", "hidden", "sensitive",
}  # fmt: skip
KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options",
    "object", "array", "boolean", "string", "decimal",
}  # fmt: skip
MAINTENANCE_STATUS = {"active", "beta", "development", "inactive", "unknown"}
QUALITY = {"gold", "silver", "bronze", "unknown"}

DEFINITIONS = [
    ("extractors", "tap-mokapen.yml"),
    ("loaders", "target-jsonl.yml"),
    ("loaders", "target-postgres.yml"),
]


def hub_problems(plugin_type: str, definition: dict) -> list[str]:
    """What the Hub's schema for ``plugin_type`` would refuse in ``definition``."""
    problems = [f"missing {key}" for key in sorted(REQUIRED - set(definition))]
    problems += [
        f"unknown key {key}" for key in sorted(set(definition) - ALLOWED_KEYS[plugin_type])
    ]
    problems += [
        f"capability {c}"
        for c in definition.get("capabilities", [])
        if c not in CAPABILITIES[plugin_type]
    ]
    for setting in definition.get("settings", []):
        name = setting.get("name")
        problems += [f"setting without a name: {setting}"] if not name else []
        problems += [f"setting {name}: key {k}" for k in sorted(set(setting) - SETTING_KEYS)]
        if "kind" in setting and setting["kind"] not in KINDS:
            problems.append(f"setting {name}: kind {setting['kind']}")
    if definition.get("maintenance_status", "unknown") not in MAINTENANCE_STATUS:
        problems.append(f"maintenance_status {definition['maintenance_status']}")
    if definition.get("quality", "unknown") not in QUALITY:
        problems.append(f"quality {definition['quality']}")
    return problems


@pytest.mark.parametrize(("plugin_type", "file"), DEFINITIONS)
def test_a_shipped_definition_keeps_the_hubs_rules(plugin_type, file):
    definition = yaml.safe_load((ROOT / "meltano" / file).read_text())

    assert hub_problems(plugin_type, definition) == []
    assert definition["quality"] in QUALITY  # the Hub's own definitions all say it


def test_the_rules_refuse_what_the_hub_refuses():
    bad = {
        "name": "tap-x",
        "namespace": "tap_x",
        "flavour": "extra",
        "capabilities": ["catalog", "hard-delete"],
        "settings": [{"name": "a", "kind": "number", "secret": True}],
        "quality": "platinum",
    }
    assert hub_problems("extractors", bad) == [
        "missing label",
        "missing variant",
        "unknown key flavour",
        "capability hard-delete",
        "setting a: key secret",
        "setting a: kind number",
        "quality platinum",
    ]


def test_the_extractor_selects_nothing_that_is_off_by_default():
    definition = yaml.safe_load((ROOT / "meltano" / "tap-mokapen.yml").read_text())

    assert definition["select"] == ["*.*", "!companies.*", "!projects.*"]


def plugin_definition(*args: str) -> subprocess.CompletedProcess:
    # -S: the --pip-url mode runs on a python3 with nothing installed.
    return subprocess.run(
        [sys.executable, "-S", str(ROOT / "scripts" / "plugin_definition.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_shipped_definition_installs_this_versions_release_pinned():
    """What `meltano add --from-ref meltano/tap-mokapen.yml` writes into a project: the
    same tap on every machine of a team, never a path on one of them."""
    definition = yaml.safe_load((ROOT / "meltano" / "tap-mokapen.yml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    assert definition["pip_url"] == f"tap-mokapen=={version}"
    assert (
        f"pip_url installs release {version}" in (ROOT / "meltano" / "tap-mokapen.yml").read_text()
    )


@pytest.mark.parametrize(
    "pip_url",
    [
        "git+https://github.com/<owner>/tap-mokapen@v0.1.0",
        "git+ssh://git@git.example.com/team/tap-mokapen.git@v0.1.0",
        "tap-mokapen==0.1.0",
    ],
)
def test_pip_url_writes_a_tagged_git_url_or_a_pinned_release_and_says_so(pip_url):
    done = plugin_definition("--pip-url", pip_url)

    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["pip_url"] == pip_url
    assert f"# pip_url written by --pip-url for this copy: {pip_url}\n" in done.stdout
    assert done.stderr == f"pip_url: {pip_url}\n"


@pytest.mark.parametrize(
    "pip_url",
    [
        "/home/ana/src/tap mokapen",
        ".",
        "-e .",
        "./tap-mokapen",
        "~/src/tap-mokapen",
        "file:///home/ana/src/tap-mokapen",
        "git+file:///home/ana/src/tap-mokapen@v0.1.0",
        "git+https://github.com/<owner>/tap-mokapen",  # no tag: whatever is newest
        "tap-mokapen",  # unpinned
        "tap-mokapen>=0.1",
    ],
)
def test_pip_url_never_writes_a_local_path_or_an_unpinned_install(pip_url):
    done = plugin_definition("--pip-url", pip_url)

    assert done.returncode == 1
    assert done.stdout == ""
    assert "a local path is one machine's" in done.stderr


def test_local_allows_a_checkouts_path_and_marks_the_copy_as_not_for_sharing():
    done = plugin_definition("--local", "--pip-url", "/home/ana/src/tap-mokapen")

    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["pip_url"] == "/home/ana/src/tap-mokapen"
    assert "never commit or share this definition" in done.stdout


def test_the_help_names_the_pip_url_written():
    done = plugin_definition("--help")

    assert "tap-mokapen==" in done.stdout and "never a local path" in done.stdout
