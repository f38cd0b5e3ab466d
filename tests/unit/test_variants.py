"""compfair.variants: the models of a study, their names, levels and parents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from compfair.compression import METHODS
from compfair.plugins import load_plugins
from compfair.variants import (
    VariantError,
    build_variants,
    fraction_label,
    level_value,
    n_of_m_label,
    variant_problems,
)

REPO = Path(__file__).resolve().parents[2]


def _config(**extra: object) -> dict:
    return {"distillation": {"students": [0.5]}, **extra}


@pytest.mark.parametrize(
    "level, label",
    [
        (0.5, "0.50"),
        (0.1, "0.10"),
        (0.333, "0.333"),
        (0.996, "0.996"),
        (0.004, "0.004"),
        (0.1234, "0.1234"),
    ],
)
def test_a_share_is_named_exactly(level: float, label: str) -> None:
    assert fraction_label(level) == label
    assert level_value(label, "fraction") == level  # the name gives back the configured level


@pytest.mark.parametrize("level", [0.12345, 1 / 3, 0.30000000000000004])
def test_a_share_that_cannot_be_named_exactly_is_rejected(level: float) -> None:
    with pytest.raises(ValueError, match="cannot be named exactly"):
        fraction_label(level)


def test_the_three_levels_that_were_once_rounded_run_at_their_value() -> None:
    """0.996, 0.004 and 0.333 once became 1.00, 0.00 and 0.33 in paths and jobs."""
    variants = build_variants(_config(compression={"magnitude": {"levels": [0.996, 0.004, 0.333]}}))
    pruned = {v.name: v.value for v in variants.of_family("pruning")}
    assert pruned == {"magnitude-0.004": 0.004, "magnitude-0.333": 0.333, "magnitude-0.996": 0.996}


def test_bad_levels_name_the_config_key() -> None:
    problems = variant_problems(
        _config(
            compression={
                "magnitude": {"levels": [0.5, 0.50, "1e-4", 1.5, 0.12345]},
            }
        )
    )
    assert "config key compression.magnitude.levels[1]: 0.5 repeats the level 0.5" in problems
    assert any(
        p.startswith("config key compression.magnitude.levels[2]")
        and "YAML read it as a string" in p
        for p in problems
    )
    assert any(
        p.startswith("config key compression.magnitude.levels[3]") and "between 0 and 1" in p
        for p in problems
    )
    assert any(p.startswith("config key compression.magnitude.levels[4]") for p in problems)


def test_n_of_m_and_integer_labels() -> None:
    assert n_of_m_label("2:4") == "2of4" and level_value("2of4", "n_of_m") == "2:4"
    for bad in ("4:2", "2-4", 2):
        with pytest.raises(ValueError):
            n_of_m_label(bad)


def test_the_default_study() -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    variants = build_variants(config)
    assert list(variants) == [
        "base",
        "teacher",
        "kd-0.90",
        "nokd-0.90",
        "magnitude-0.50",
        "wanda-0.50",
        "wanda_nm-2of4",
        "rtn-4",
        "noise-match-kd-0.90",
        "noise-match-nokd-0.90",
        "noise-match-magnitude-0.50",
        "noise-match-wanda-0.50",
        "noise-match-wanda_nm-2of4",
        "noise-match-rtn-4",
    ]
    assert variants["base"].parent is None and variants["teacher"].parent == "base"
    for v in variants.values():
        if v.name not in ("base", "teacher"):
            assert v.parent == "teacher", v.name
    assert variants["rtn-4"].family == "quantization" and variants["rtn-4"].value == 4
    assert variants["wanda_nm-2of4"].value == "2:4"
    control = variants["noise-match-wanda-0.50"]
    assert (control.family, control.method, control.matches) == ("control", "noise", "wanda-0.50")
    assert variants["kd-0.90"].family == "distillation" and variants["kd-0.90"].level == "0.90"
    pattern = re.compile(f"^(?:{variants.wildcard('pruning')})$")
    assert pattern.match("magnitude-0.50") and not pattern.match("magnitude-0x50")
    assert not pattern.match("teacher") and not pattern.match("kd-0.50")


def test_paper_preset_compares_distilgpt2_with_gpt2() -> None:
    config = yaml.safe_load((REPO / "presets" / "paper.yaml").read_text())
    variants = build_variants(config)
    assert variants["distilgpt2"].parent == "gpt2" and variants["gpt2"].parent is None
    assert variants["kd-distilgpt2"].parent == "teacher"


def test_display_order_does_not_depend_on_key_order() -> None:
    a = _config(compression={"random": {"levels": [0.5]}, "magnitude": {"levels": [0.7, 0.1]}})
    b = _config(compression={"magnitude": {"levels": [0.1, 0.7]}, "random": {"levels": [0.5]}})
    assert list(build_variants(a)) == list(build_variants(b))
    assert list(build_variants(a))[-3:] == ["magnitude-0.10", "magnitude-0.70", "random-0.50"]


def test_students_controls_and_composed_parents() -> None:
    config = _config(
        distillation={"students": [0.5, "every_other", [0, 3]], "no_kd_control": True},
        compression={
            "magnitude": {"levels": [0.5], "parent": "kd-0.50"},
            "twice": {"method": "magnitude", "levels": [0.3], "parent": "magnitude-0.50"},
        },
    )
    variants = build_variants(config)
    assert variants.names("distillation") == [
        "kd-0.50",
        "nokd-0.50",
        "kd-every_other",
        "nokd-every_other",
        "kd-L0_3",
        "nokd-L0_3",
    ]
    assert variants["nokd-0.50"].method == "nokd" and variants["nokd-0.50"].parent == "teacher"
    assert variants.lineage("twice-0.30") == [
        "twice-0.30",
        "magnitude-0.50",
        "kd-0.50",
        "teacher",
        "base",
    ]


def test_unknown_method_parent_and_cycle_are_problems() -> None:
    problems = variant_problems(
        _config(
            compression={
                "magnitud": {"levels": [0.5]},
                "a": {"method": "magnitude", "levels": [0.5], "parent": "b-0.50"},
                "b": {"method": "magnitude", "levels": [0.5], "parent": "a-0.50"},
                "c": {"method": "magnitude", "levels": [0.5], "parent": "nothing"},
                "kd": {"method": "magnitude", "levels": [0.5]},
            }
        )
    )
    assert any(
        "compression.magnitud: unknown compression method 'magnitud'" in p and "magnitude" in p
        for p in problems
    )
    assert any("is a cycle" in p for p in problems)
    assert any("compression.c.parent: parent 'nothing'" in p for p in problems)
    assert any(p.startswith("config key compression.kd:") for p in problems)
    with pytest.raises(VariantError):
        build_variants(_config(compression={"magnitud": {"levels": [0.5]}}))


def test_method_options_are_checked_against_its_schema() -> None:
    problems = variant_problems(
        _config(compression={"magnitude": {"levels": [0.5], "options": {"tolerence": 1}}})
    )
    assert problems == [
        "config key compression.magnitude.options.tolerence: unknown option of method "
        "'magnitude' (it takes: tolerance)"
    ]
    # the config's strict validator, as for every other plug-in: YAML's 128.0 is no integer
    problems = variant_problems(
        _config(compression={"rtn": {"levels": [4], "options": {"group_size": 128.0}}})
    )
    assert problems == [
        "config key compression.rtn.options.group_size: 128.0 is not of type 'integer', 'null' "
        "(write 128, without a decimal point)"
    ]
    variants = build_variants(_config(compression={"magnitude": {"levels": [0.5]}}))
    assert variants["magnitude-0.50"].options == {"tolerance": 0.005}  # the default filled in


def test_a_plugin_file_registers_a_method(tmp_path: Path) -> None:
    (tmp_path / "halve.py").write_text(
        "from compfair.compression import register_method\n"
        "from compfair.compression.methods.magnitude import GlobalMagnitude\n"
        "@register_method('halve_test')\n"
        "class Halve(GlobalMagnitude):\n"
        "    summary = 'a throwaway method'\n"
    )
    load_plugins(["halve.py"], tmp_path)
    try:
        variants = build_variants(_config(compression={"halve_test": {"levels": [0.25]}}))
        assert variants["halve_test-0.25"].family == "pruning"
    finally:
        METHODS.pop("halve_test", None)
    with pytest.raises(FileNotFoundError, match="config key plugins: file not found: missing.py"):
        load_plugins(["missing.py"], tmp_path)
