"""A number setting's rule is in the config schema as bounds, and the one-line check of
the settings refuses exactly what those bounds refuse."""

from __future__ import annotations

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
