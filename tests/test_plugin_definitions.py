"""The Meltano plugin definitions shipped in meltano/ keep the Meltano Hub's rules for a
plugin definition (its extractor and loader schemas), so that they could be published
as they are and `meltano add --from-ref` takes them offline.

The rules are the Hub's, as its schemas stated them when this was written: the keys a
definition and a setting may have, the keys it must have, and the values of kind,
capabilities, maintenance_status and quality.
"""

from __future__ import annotations

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
