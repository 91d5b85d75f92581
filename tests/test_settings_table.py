"""A number setting's rule is in the config schema as bounds, and the one-line check of
the settings refuses exactly what those bounds refuse."""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from tap_mokapen import config, validation

NUMBER_SETTINGS = [s for s in config.SETTINGS if s.rule]
TRIED = (-1, 0, 0.5, 1, 2, 1000)


@pytest.mark.parametrize("setting", NUMBER_SETTINGS, ids=lambda s: s.name)
def test_the_schema_bounds_and_the_one_line_check_agree(setting):
    schema = config.config_jsonschema()["properties"][setting.name]
    assert set(config.BOUNDS[setting.rule]) <= set(schema)
    for value in TRIED:
        allowed = jsonschema.Draft7Validator(schema).is_valid(value)
        base = {"client_id": "c", "client_secret": "s", "organization_id": 849}
        found = [p for p in validation.problems({**base, setting.name: value}) if setting.name in p]
        assert bool(found) != allowed, (setting.name, value, found)
        assert all(len(p.splitlines()) == 1 for p in found)


def test_every_settings_field_comes_from_the_one_table():
    filled = {s.into or s.name for s in config.SETTINGS} - {"organization_id", "start_date"}
    fields = {field.name for field in dataclasses.fields(config.Settings)}
    assert fields == filled


def test_settings_read_defaults_and_given_values_as_the_table_says():
    defaults = config.Settings.from_config({"organization_id": "849"})
    assert defaults.organization_ids == (849,)
    assert defaults.max_response_bytes == 100 * 2**20
    assert defaults.max_deleted_share == config.DEFAULT_MAX_DELETED_SHARE
    assert defaults.detect_deletions == frozenset()
    assert defaults.page_size is None and defaults.max_requests_per_run is None
    given = config.Settings.from_config(
        {
            "organization_ids": [849, "850"],
            "base_url": "http://127.0.0.1:8765/",
            "scope": " contacts.read   tasks.read ",
            "page_size": "250",
            "max_wait_seconds": "12.5",
            "detect_deletions": '["contacts"]',
        }
    )
    assert given.organization_ids == (849, 850)
    assert given.base_url == "http://127.0.0.1:8765"
    assert given.scope == "contacts.read tasks.read"
    assert given.page_size == 250 and given.max_wait_seconds == 12.5
    assert given.detect_deletions == frozenset({"contacts"})
