"""The quality flags of models.csv: clear and possible breaches, with intervals, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from compfair.io import write_json
from compfair.metrics import Bootstrap
from compfair.tables.files import read_eval, read_eval_units
from compfair.tables.flags import Flags, flag_models
from compfair.tables.models import MODELS_COLUMNS, MODELS_QUALITY, models_table

VARIANTS = [
    {"model": "base", "family": "base", "method": "", "level": None, "parent": None},
    {"model": "teacher", "family": "finetuned", "method": "", "level": None, "parent": "base"},
    {"model": "sharp", "family": "pruning", "method": "m", "level": "0.50", "parent": "teacher"},
    {"model": "noisy", "family": "pruning", "method": "r", "level": "0.50", "parent": "teacher"},
]
PARENTS = {v["model"]: v["parent"] for v in VARIANTS}
TOKENS = 15  # predicted tokens of each 16-token window
N_WINDOWS = 12
BASE_NLL = 40.0  # per window: perplexity exp(40 / 15)
SIGNS = np.array([1, -1] * (N_WINDOWS // 2), dtype=float)


def _eval(path: Path, log_ratio: np.ndarray) -> Path:
    """An evaluation file whose windows have ``log_ratio`` (per window) to the teacher's."""
    nll = BASE_NLL + TOKENS * log_ratio
    write_json(
        path,
        {
            "model": path.stem,
            "perplexity": math.exp(nll.sum() / (TOKENS * N_WINDOWS)),
            "heldout_tokens": 16 * N_WINDOWS,
            "n_parameters": 100,
            "n_prunable": 80,
            "sparsity": 0.0,
            "window_nll": [float(x) for x in nll],
            "window_tokens": [TOKENS] * N_WINDOWS,
        },
    )
    return path


@pytest.fixture()
def eval_files(tmp_path: Path) -> dict:
    ratios = {
        "base": np.zeros(N_WINDOWS),
        "teacher": np.zeros(N_WINDOWS),
        "sharp": math.log(3.0) + 0.05 * SIGNS,  # 3 x the teacher's, window after window
        "noisy": math.log(2.1) + 0.6 * SIGNS,  # 2.1 x on the whole, from 1.15 to 3.8 x
    }
    return {(1, m): _eval(tmp_path / f"{m}.json", r) for m, r in ratios.items()}


def test_window_units_pair_only_the_same_windows(eval_files: dict) -> None:
    units = read_eval_units(eval_files[(1, "sharp")])
    assert units is not None and units.ids[:2] == ("0+16", "16+16")
    assert units.tokens is not None and units.tokens.sum() == TOKENS * N_WINDOWS


def test_models_table_tells_clear_from_possible(eval_files: dict) -> None:
    boot = Bootstrap(n_resamples=500, seed=0)
    flags = flag_models(PARENTS, eval_files, {}, {"max_perplexity_ratio": 2.0}, boot)
    assert sorted(flags) == ["noisy", "sharp"]
    assert flags.degradation("sharp") == "clear"
    assert flags.degradation("noisy") == "possible"
    evals = {key: read_eval(path) for key, path in eval_files.items()}
    table = models_table(VARIANTS, evals, flags).set_index("model")
    assert list(table.reset_index().columns) == MODELS_COLUMNS
    assert table["flagged"].to_dict() == {
        "base": False,
        "teacher": False,
        "sharp": True,
        "noisy": True,
    }
    assert table["degradation"].to_dict() == {
        "base": "",
        "teacher": "",
        "sharp": "clear",
        "noisy": "possible",
    }
    sharp, noisy = table.loc["sharp"], table.loc["noisy"]
    assert sharp["perplexity_ratio"] == pytest.approx(3.0)
    assert 2.0 < sharp["perplexity_ratio_low"] < 3.0 < sharp["perplexity_ratio_high"] < 3.2
    assert noisy["perplexity_ratio"] == pytest.approx(2.1)
    assert noisy["perplexity_ratio_low"] < 2.0 < 2.1 < noisy["perplexity_ratio_high"]
    assert sharp["flag_reasons"].startswith("perplexity 3 x the parent's > 2 (clear, 95% CI ")
    assert noisy["flag_reasons"].startswith("perplexity 2.1 x the parent's > 2 (possible, 95% CI")
    # the teacher's interval is reported though it breaks nothing; base has no parent
    assert table.loc["teacher", "perplexity_ratio_low"] == pytest.approx(1.0)
    assert math.isnan(table.loc["base", "perplexity_ratio_low"])
    # the guard off: no flags, but the intervals stay
    off = flag_models(PARENTS, eval_files, {}, {"max_perplexity_ratio": None}, boot)
    assert not off and off.perplexity_ratio["sharp"] == flags.perplexity_ratio["sharp"]


def test_flags_are_seeded_by_row(eval_files: dict) -> None:
    boot = Bootstrap(n_resamples=300, seed=4)
    first = flag_models(PARENTS, eval_files, {}, {"max_perplexity_ratio": 2.0}, boot)
    second = flag_models(PARENTS, eval_files, {}, {"max_perplexity_ratio": 2.0}, boot)
    assert first.perplexity_ratio == second.perplexity_ratio
    assert [str(b) for b in first["noisy"]] == [str(b) for b in second["noisy"]]


def test_a_text_guard_names_its_prompt_set(eval_files: dict, tmp_path: Path) -> None:
    def quality(path: Path, share: list[float]) -> Path:
        ids = [f"p{i:02d}" for i in range(len(share))]
        block = {
            "distinct_1": 0.5,
            "distinct_2": 0.8,
            "distinct_3": 0.9,
            "mean_words": 10.0,
            "empty_share": float(np.mean(share)),
            "teacher_perplexity": 30.0,
            "units": {"prompt_id": ids, "empty_share": share},
        }
        write_json(path, {"promptsets": {"rtp": block}})
        return path

    files = {
        (1, "teacher"): quality(tmp_path / "q-teacher.json", [0.0] * 12),
        (1, "sharp"): quality(tmp_path / "q-sharp.json", [0.5, 0.25] * 6),  # 37.5 % empty
    }
    boot = Bootstrap(n_resamples=300, seed=0)
    flags = flag_models(PARENTS, eval_files, files, {"max_empty_share": 0.05}, boot)
    assert isinstance(flags, Flags) and list(flags) == ["sharp"]
    (breach,) = flags["sharp"]
    assert breach.where == "rtp" and breach.clear
    assert str(breach).startswith("rtp: empty_share 0.375 > 0.05 (clear, 95% CI 0.")


def test_models_table_sets_each_models_text_quality_beside_its_perplexity(
    eval_files: dict,
) -> None:
    """models.csv: <promptset>_<measure> columns after sparsity, the mean over seeds."""
    evals = {key: read_eval(path) for key, path in eval_files.items()}
    report = {"teacher_perplexity": 30.0, "distinct_2": 0.8, "empty_share": 0.0}
    quality = {
        "sharp": {
            1: {"rtp": {**report, "teacher_perplexity": 90.0}, "bold": report},
            2: {"rtp": {**report, "teacher_perplexity": 60.0, "empty_share": 0.5}},
        },
        "teacher": {1: {"rtp": report, "bold": {**report, "teacher_perplexity": None}}},
    }
    table = models_table(VARIANTS, evals, Flags(), quality)
    at = MODELS_COLUMNS.index("sparsity") + 1
    added = [f"{p}_{m}" for p in ("bold", "rtp") for m in MODELS_QUALITY]
    assert list(table.columns) == [*MODELS_COLUMNS[:at], *added, *MODELS_COLUMNS[at:]]
    rows = table.set_index("model")
    assert rows.at["sharp", "rtp_teacher_perplexity"] == pytest.approx(75.0)  # (90 + 60) / 2
    assert rows.at["sharp", "rtp_empty_share"] == pytest.approx(0.25)
    assert rows.at["sharp", "bold_distinct_2"] == pytest.approx(0.8)  # seed 1 only
    assert math.isnan(rows.at["teacher", "bold_teacher_perplexity"])  # none measured
    assert math.isnan(rows.at["noisy", "rtp_distinct_2"])  # no quality report
    assert rows.at["sharp", "perplexity_ratio"] == pytest.approx(3.0)
