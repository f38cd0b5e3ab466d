"""The config schema's enums against the package's constants: one fact, checked in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from compfair.distill import LAYER_SELECTIONS
from compfair.metrics import METHODS
from compfair.models import BASE_SOURCES
from compfair.variants import CONTROL_KINDS, NAMED_LAYER_CHOICES, RESERVED_REFERENCE_NAMES

SCHEMA = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml").read_text()
)


def _at(*keys: str) -> Any:
    node = SCHEMA
    for key in keys:
        node = node[key]
    return node


def test_the_schemas_enums_are_the_packages_constants() -> None:
    props = SCHEMA["properties"]
    pairs = [
        (
            _at("properties", "controls", "properties", "models", "additionalProperties")["items"],
            CONTROL_KINDS,
        ),
        (props["distillation"]["properties"]["layer_selection"], LAYER_SELECTIONS),
        (props["bootstrap"]["properties"]["method"], METHODS),
        (props["base_model"]["properties"]["source"], BASE_SOURCES),
        (props["references"]["propertyNames"]["not"], RESERVED_REFERENCE_NAMES),
    ]
    for node, constant in pairs:
        assert sorted(node["enum"]) == sorted(constant), (node, constant)
    named = props["distillation"]["properties"]["students"]["items"]["anyOf"]
    enums = [choice["enum"] for choice in named if "enum" in choice]
    assert enums == [list(NAMED_LAYER_CHOICES)]
