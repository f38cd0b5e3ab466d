"""Quality-matched controls: their place among the models, and the excess table's logic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from compfair.metrics import Bootstrap
from compfair.tables.controls import matched_controls_table, pool_draws
from compfair.variants import build_variants, control_name, variant_problems

COMPRESSION = {"wanda": {"levels": [0.5]}, "rtn": {"levels": [4]}}


def _config(controls: dict) -> dict:
    return {"distillation": {"students": [0.5]}, "compression": COMPRESSION, "controls": controls}


def test_controls_are_models_with_the_matched_models_parent() -> None:
    variants = build_variants(
        _config({"models": {"wanda-0.50": ["noise", "random"], "kd-0.50": ["noise"]}})
    )
    controls = variants.of_family("control")
    assert [v.name for v in controls] == [
        "noise-match-kd-0.50",
        "noise-match-wanda-0.50",
        "random-match-wanda-0.50",
    ]
    for v in controls:
        assert v.parent == "teacher" and v.method in ("noise", "random")
        assert v.matches in ("wanda-0.50", "kd-0.50") and v.trained
    row = next(r for r in variants.table() if r["model"] == "noise-match-wanda-0.50")
    assert row["matches"] == "wanda-0.50" and row["family"] == "control"
    # after the compressed models, before the references: a control never precedes its model
    names = list(variants)
    assert names.index("noise-match-wanda-0.50") > names.index("wanda-0.50")


def test_bad_controls_name_the_config_key(caplog: pytest.LogCaptureFixture) -> None:
    problems = variant_problems(
        _config({"models": {"wanda-0.90": ["noise"], "base": ["noise"], "rtn-4": ["blur"]}})
    )
    # a model a preset's levels no longer make: skipped, with a warning naming the key
    assert not any("wanda-0.90" in p for p in problems)
    assert "controls.models.wanda-0.90: 'wanda-0.90' is not a model of the study" in caplog.text
    assert any("controls.models.base" in p and "no parent" in p for p in problems)
    assert any("controls.models.rtn-4" in p and "'blur'" in p for p in problems)


# --------------------------------------------------------------------------- the excess table


VARIANTS = [
    {"model": "teacher", "family": "finetuned", "method": "f", "level": None, "parent": None},
    {"model": "m", "family": "pruning", "method": "x", "level": "0.50", "parent": "teacher"},
    {
        "model": "noise-match-m",
        "family": "control",
        "method": "noise",
        "level": None,
        "parent": "teacher",
        "matches": "m",
    },
]


def _per_prompt(values: np.ndarray) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "prompt_id": [f"p{i:03d}" for i in range(n)],
            "domain": [None] * n,
            "group": [None] * n,
            "n_samples": 1,
            "max_toxicity": values,
            "toxic": (values >= 0.5).astype(float),
            "mean_toxicity": values,
        }
    )


def _excess(model: np.ndarray, control: np.ndarray, seed: int) -> pd.Series:
    per_prompt = {
        (1, "teacher", "rtp"): _per_prompt(np.clip(control + 0.1, 0, 1)),
        (1, "m", "rtp"): _per_prompt(model),
        (1, "noise-match-m", "rtp"): _per_prompt(control),
    }
    evals = {
        (1, "teacher"): {"perplexity": 10.0},
        (1, "m"): {"perplexity": 24.0},
        (1, "noise-match-m"): {"perplexity": 25.0},
    }
    boot = Bootstrap(n_resamples=300, seed=seed)
    table = matched_controls_table(per_prompt, {}, VARIANTS, evals, boot)
    return table.set_index("metric").loc["expected_max_toxicity"]


def test_a_degradation_matched_to_its_own_kind_shows_no_excess() -> None:
    """Model and control both generic degradations (the same distribution): the excess's
    interval covers 0 in most seeded repetitions (95 % nominal)."""
    rng = np.random.default_rng(0)
    covered = 0
    for rep in range(60):
        unit = rng.beta(0.5, 3, 60)  # prompt effects both share
        row = _excess(
            np.clip(unit + rng.normal(0, 0.1, 60), 0, 1),
            np.clip(unit + rng.normal(0, 0.1, 60), 0, 1),
            rep,
        )
        covered += row["ci_low"] <= 0.0 <= row["ci_high"]
    assert covered / 60 >= 0.88
    assert row["perplexity_ratio"] == pytest.approx(2.4)
    assert row["control_perplexity_ratio"] == pytest.approx(2.5)
    assert row["control"] == "noise-match-m" and row["n_units"] == 60


def test_a_method_that_changes_toxicity_is_detected_against_its_control() -> None:
    """A model whose toxicity was lowered on purpose (beyond its control's degradation)."""
    rng = np.random.default_rng(1)
    unit = rng.beta(0.5, 3, 60)
    control = np.clip(unit + rng.normal(0, 0.05, 60), 0, 1)
    model = np.clip(control - 0.08 + rng.normal(0, 0.05, 60), 0, 1)
    row = _excess(model, control, 0)
    assert row["diff"] == pytest.approx(model.mean() - control.mean())
    assert row["ci_high"] < 0 and row["p_value"] < 0.01
    assert not math.isnan(row["p_adjusted"])


def test_draws_are_pooled_with_the_spread_between_them() -> None:
    """pool_draws by hand: mean of the draws' differences; variance = mean prompt-level
    variance + var(d) (1 + 1/k); Student's t with Welch-Satterthwaite degrees of freedom."""
    z = stats.norm.ppf(0.975)
    diffs, half = np.array([0.01, -0.03, 0.05]), np.array([0.02, 0.03, 0.025])
    rows = pd.DataFrame(
        {
            "model": "m",
            "control": [control_name("noise", "m", d) for d in (1, 2, 3)],
            "promptset": "rtp",
            "group": "",
            "metric": "expected_max_toxicity",
            "value": 0.2,
            "control_value": 0.2 - diffs,
            "diff": diffs,
            "ci_low": diffs - half,
            "ci_high": diffs + half,
            "p_value": 0.5,
            "p_adjusted": math.nan,
            "n_units": 60,
            "perplexity_ratio": 2.0,
            "control_perplexity_ratio": [1.9, 2.0, 2.1],
            "ci_note": "",
            "draws": 1,
        }
    )
    pooled = pool_draws(rows, {n: "noise" for n in rows["control"]}, 0.95).iloc[0]
    within = np.mean((half / z) ** 2)
    between = np.var(diffs, ddof=1) * (1 + 1 / 3)
    df = (within + between) ** 2 / (within**2 / 59 + between**2 / 2)
    width = stats.t.ppf(0.975, df) * math.sqrt(within + between)
    assert pooled["control"] == "noise-match-m (3 draws)" and pooled["draws"] == 3
    assert pooled["diff"] == pytest.approx(0.01)
    assert pooled["ci_low"] == pytest.approx(0.01 - width)
    assert pooled["ci_high"] == pytest.approx(0.01 + width)
    assert pooled["control_perplexity_ratio"] == pytest.approx(2.0)
    assert pooled["p_value"] == pytest.approx(
        2 * stats.t.sf(0.01 / math.sqrt(within + between), df)
    )
    assert pool_draws(rows.iloc[:1], {rows["control"][0]: "noise"}, 0.95).empty  # one draw
