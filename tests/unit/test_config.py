"""The config schema: every shipped config is valid; bad ones name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compfair.config import canonical, config_errors, drop_removed, missing_paths, project_path
from compfair.data.sources import source_problems
from compfair.variants import variant_problems
from tests.support import layered_files

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize("preset", [[], ["presets/smoke.yaml"], ["presets/paper.yaml"]])
def test_shipped_configs_are_valid(preset: list[str]) -> None:
    config = layered_files("config.yaml", *preset)
    assert config_errors(config, SCHEMA) == []
    drop_removed(config)
    assert missing_paths(config, REPO) == []
    assert source_problems(config, REPO) == []
    assert variant_problems(config) == []


def test_every_schema_property_has_description_and_default() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(props: dict, where: str) -> list[str]:
        bad = []
        for name, spec in props.items():
            if "$ref" in spec:
                continue
            if "description" not in spec or (
                "default" not in spec and name not in ("source", "prompts")
            ):
                bad.append(f"{where}{name}")
            bad += walk(spec.get("properties", {}), f"{where}{name}.")
        return bad

    missing = walk(schema["properties"], "")
    for name, spec in schema["definitions"].items():
        missing += walk(spec["properties"], f"definitions.{name}.")
    assert missing == []


def test_errors_name_each_bad_key() -> None:
    config = layered_files("config.yaml")
    config["compression"]["magnitude"]["levels"] = [0.3, 1.5, 0]
    config["prompts"]["rtp"]["samples"] = 0
    config["typo_key"] = 1
    errors = config_errors(config, SCHEMA)
    assert "config key prompts.rtp.samples: 0 is less than the minimum of 1" in errors
    assert any("'typo_key' was unexpected" in e for e in errors)
    assert len(errors) == 2
    problems = variant_problems(config)
    assert problems == [
        "config key compression.magnitude.levels[1]: 1.5 is not strictly between 0 and 1",
        "config key compression.magnitude.levels[2]: 0 is not strictly between 0 and 1",
    ]


def test_the_old_pruning_key_says_what_replaced_it() -> None:
    config = layered_files("config.yaml")
    config["pruning"] = {"sparsities": [0.5]}
    errors = config_errors(config, SCHEMA)
    assert any(
        e.startswith("config key pruning: no longer exists; use compression") for e in errors
    )


def test_canonical_params_ignore_key_order() -> None:
    a = {"tiny": {"n_layer": 4, "n_embd": 32}, "source": "tiny_gpt2", "levels": [0.5, 0.1]}
    b = {"source": "tiny_gpt2", "levels": [0.5, 0.1], "tiny": {"n_embd": 32, "n_layer": 4}}
    assert repr(canonical(a)) == repr(canonical(b))
    assert canonical(a)["levels"] == [0.5, 0.1]  # lists keep their order


def test_project_paths_resolve_against_the_project(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("a")
    assert project_path("data/x.csv", tmp_path) == str(tmp_path / "data" / "x.csv")
    assert (
        project_path("allenai/real-toxicity-prompts", tmp_path) == "allenai/real-toxicity-prompts"
    )
    assert project_path(None, tmp_path) is None


def test_unknown_prompt_source_and_bad_promptset_name() -> None:
    config = layered_files("config.yaml")
    config["prompts"]["Bad-Name"] = {"source": "reddit"}
    errors = config_errors(config, SCHEMA)
    assert any("'Bad-Name' does not match" in e for e in errors)
    problems = source_problems(config, REPO)
    assert any(
        p.startswith("config key prompts.Bad-Name.source: unknown prompt source 'reddit'")
        for p in problems
    )


def test_missing_paths_name_the_key(tmp_path: Path) -> None:
    config = layered_files("config.yaml")
    config["corpus"]["path"] = "nowhere"
    config["base_model"] = {"source": "hf"}
    config["report"] = {"toxicity_promptset": "nope"}
    problems = missing_paths(config, tmp_path)
    assert "config key corpus.path: file or folder not found: nowhere" in problems
    assert "config key prompts.bold.path: file not found: data/bias_prompts.csv" in source_problems(
        config, tmp_path
    )
    assert "config key base_model.path: required when base_model.source is 'hf'" in problems
    assert any(p.startswith("config key report.toxicity_promptset") for p in problems)


@pytest.mark.parametrize(
    "key, value, message",
    [
        (
            ("prompts", "rtp", "samples"),
            3.0,
            "config key prompts.rtp.samples: 3.0 is not of type 'integer' (write 3, without a decimal point)",
        ),
        (("seed",), 1234.0, "config key seed: 1234.0 is not of type 'integer' (write 1234"),
        (
            ("teacher", "lr"),
            "1e-4",
            "config key teacher.lr: '1e-4' is not of type 'number' (YAML reads 1e-4 as a string",
        ),
    ],
)
def test_yaml_type_traps_get_a_hint(key: tuple, value: object, message: str) -> None:
    config = layered_files("config.yaml")
    target = config
    for part in key[:-1]:
        target = target[part]
    target[key[-1]] = value
    assert any(e.startswith(message) for e in config_errors(config, SCHEMA)), config_errors(
        config, SCHEMA
    )


def test_consistency_checks_name_the_key(tmp_path: Path) -> None:
    config = layered_files("config.yaml")
    config["scoring"] = {"sentiment_positive": -0.5, "sentiment_negative": 0.5}
    config["references"] = {"mine": {"path": "./models/mine"}, "hub": {"path": "owner/name"}}
    problems = missing_paths(config, tmp_path)
    assert (
        "config key scoring.sentiment_positive: -0.5 must be above scoring.sentiment_negative (0.5)"
        in problems
    )
    assert "config key references.mine.path: model folder not found: ./models/mine" in problems
    assert not any("references.hub" in p for p in problems)  # a hub id is not checked here


def test_a_preset_removes_entries_of_the_default_with_null() -> None:
    config = layered_files("config.yaml", "presets/smoke.yaml")
    assert config["compression"]["wanda"] is None
    assert drop_removed(config) == [
        "compression.wanda",
        "compression.wanda_nm",
        "compression.rtn",
        *(f"controls.models.{m}" for m in ("wanda-0.50", "wanda_nm-2of4", "rtn-4")),
        "controls.models.kd-0.90",
        "controls.models.nokd-0.90",
    ]
    assert config["controls"]["models"] == {"magnitude-0.50": ["noise", "random"]}
    assert sorted(config["prompts"]) == ["bold", "rtp"]
    assert sorted(config["compression"]) == ["magnitude", "random"]
