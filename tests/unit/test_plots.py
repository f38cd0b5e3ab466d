"""Tests for compfair.plots: each figure is drawn from synthetic tables and read back.

The synthetic study has every family (base, finetuned teacher, kd/nokd students
at two depths, magnitude/random/Wanda/N:M/structured pruning, RTN and GPTQ
quantization, RTN composed on a student, a gpt2 -> distilgpt2 reference pair)
and one flagged model. Every value a figure draws is read back from its
matplotlib artists and compared with the table it came from.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import AxesImage

from compfair.io import write_csv, write_jsonl
from compfair.plots import (
    FIGURES,
    FigureOptions,
    Tables,
    figure_names,
    figure_specs,
    group_domains_from_prompts,
    plot_all,
    read_tables,
    register_figure,
    unregister_figure,
)
from compfair.plots.data import comparison_values, metric_values
from compfair.plots.style import model_styles

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RTP, BOLD = "rtp", "bold"
#: model -> (family, method, level, parent, toxicity shift, perplexity ratio to parent)
MODELS = {
    "base": ("base", "none", None, None, 0.0, math.nan),
    "teacher": ("finetuned", "finetune", None, "base", 0.05, 0.6),
    "kd-0.50": ("distillation", "kd", "0.50", "teacher", -0.03, 1.4),
    "nokd-0.50": ("distillation", "nokd", "0.50", "teacher", 0.02, 1.9),
    "kd-0.25": ("distillation", "kd", "0.25", "teacher", -0.05, 1.8),
    "nokd-0.25": ("distillation", "nokd", "0.25", "teacher", 0.04, 2.6),  # flagged
    "magnitude-0.10": ("pruning", "magnitude", "0.10", "teacher", 0.01, 1.02),
    "magnitude-0.30": ("pruning", "magnitude", "0.30", "teacher", 0.03, 1.3),
    "magnitude-0.50": ("pruning", "magnitude", "0.50", "teacher", -0.15, 22.0),
    "random-0.10": ("pruning", "random", "0.10", "teacher", 0.02, 1.5),
    "random-0.30": ("pruning", "random", "0.30", "teacher", 0.06, 1.9),
    "wanda-0.50": ("pruning", "wanda", "0.50", "teacher", -0.01, 1.25),
    "wanda_nm-2of4": ("pruning", "wanda", "2of4", "teacher", -0.02, 1.6),
    "heads-0.25": ("pruning", "heads", "0.25", "teacher", 0.015, 1.7),
    "rtn-8": ("quantization", "rtn", "8", "teacher", 0.0, 1.001),
    "rtn-4": ("quantization", "rtn", "4", "teacher", 0.025, 1.12),
    "gptq-4": ("quantization", "gptq", "4", "teacher", 0.01, 1.05),
    "rtn_kd-8": ("quantization", "rtn", "8", "kd-0.50", -0.002, 1.003),
    "rtn_kd-4": ("quantization", "rtn", "4", "kd-0.50", 0.03, 1.2),
    "gpt2": ("reference", "none", None, None, 0.03, math.nan),
    "distilgpt2": ("reference", "distillation", None, "gpt2", 0.05, 1.3),
}
FLAGGED = {
    "magnitude-0.50": "perplexity 22 x the parent's > 2",
    "nokd-0.25": "perplexity 2.6 x the parent's > 2; rtp: distinct_2 30% below the parent's > 25%",
}
GROUPS = {
    "men": "gender",
    "women": "gender",
    "asian": "race_ethnicity",
    "black": "race_ethnicity",
    "white": "race_ethnicity",
    "christian": "religion",
    "jewish": "religion",
    "muslim": "religion",
}
DOMAINS = sorted(set(GROUPS.values()))
MODEL_COLUMNS = ["model", "family", "method", "level", "parent"]


def _emt(model: str, promptset: str) -> float:
    return (0.30 if promptset == RTP else 0.12) + MODELS[model][4]


def _prob(model: str, promptset: str) -> float:
    return max(0.0, _emt(model, promptset) - 0.1 + 0.5 * MODELS[model][4])


def _sentiment(model: str, j: int) -> float:
    return round(0.07 * j - 0.25 + 2 * MODELS[model][4], 6)


def _ppl(model: str) -> float:
    family, _, _, parent, _, ratio = MODELS[model]
    if parent is None:
        return 40.0 if model == "base" else 30.0
    return _ppl(parent) * ratio


def _sparsity(model: str) -> float:
    family, _, level, *_ = MODELS[model]
    return float(level) if family == "pruning" and level[0] == "0" else 0.0


def _size(model: str) -> float:
    return 1.0e6 * (0.5 if "0.25" in model and MODELS[model][0] == "distillation" else 1.0)


def _info(model: str) -> list:
    family, method, level, parent, *_ = MODELS[model]
    return [model, family, method, level, parent]


def _metric_rows() -> list[list]:
    rows = []

    def add(model, promptset, group, metric, value, hw=None):
        lo, hi = (value - hw, value + hw) if hw is not None else (math.nan, math.nan)
        rows.append(
            [*_info(model), promptset, group, metric, value, lo, hi, math.nan, 1, model in FLAGGED]
        )

    for i, model in enumerate(MODELS):
        add(model, None, None, "perplexity", _ppl(model))
        add(model, None, None, "n_parameters", _size(model))
        add(model, None, None, "sparsity", _sparsity(model))
        for promptset in (RTP, BOLD):
            add(
                model,
                promptset,
                None,
                "expected_max_toxicity",
                _emt(model, promptset),
                0.02 + 0.001 * i,
            )
            add(model, promptset, None, "toxicity_probability", _prob(model, promptset), 0.04)
            add(model, promptset, None, "mean_toxicity", _emt(model, promptset) / 3, 0.01)
            add(model, promptset, None, "distinct_2", 0.8)
        for j, group in enumerate(GROUPS):
            add(model, BOLD, group, "sentiment_mean", _sentiment(model, j), 0.05)
        for k, domain in enumerate(DOMAINS):
            add(model, BOLD, domain, "sentiment_gap", 0.1 + 0.05 * k + MODELS[model][4], 0.04)
        add(
            model,
            "crows_pairs",
            None,
            "crows_pairs_stereo_share",
            55.0 + 10 * MODELS[model][4],
            3.0,
        )
        add(model, "stereoset", None, "stereoset_ss", 60.0 - 10 * MODELS[model][4], 2.0)
    return rows


def _comparison_rows() -> list[list]:
    rows = []
    for i, model in enumerate(MODELS):
        parent = MODELS[model][3]
        if parent is None:
            continue

        def add(promptset, group, metric, value, parent_value, hw, model=model):
            diff = value - parent_value
            rows.append(
                [
                    *_info(model),
                    promptset,
                    group,
                    metric,
                    value,
                    parent_value,
                    diff,
                    diff - hw,
                    diff + hw,
                    50,
                    1,
                    model in FLAGGED,
                ]
            )

        for promptset in (RTP, BOLD):
            add(
                promptset,
                None,
                "expected_max_toxicity",
                _emt(model, promptset),
                _emt(parent, promptset),
                0.015 + 0.001 * i,
            )
            add(
                promptset,
                None,
                "toxicity_probability",
                _prob(model, promptset),
                _prob(parent, promptset),
                0.03,
            )
        for j, group in enumerate(GROUPS):
            value, parent_value = _sentiment(model, j), _sentiment(parent, j)
            add(BOLD, group, "sentiment_mean", value, parent_value, 0.02 if j % 2 else 0.2)
    return rows


def synthetic_tables(with_optional: bool = True) -> Tables:
    """The synthetic study's tables (calibration and audit only ``with_optional``)."""
    value_columns = ["promptset", "group", "metric", "value"]
    metrics = pd.DataFrame(
        _metric_rows(),
        columns=[
            *MODEL_COLUMNS,
            *value_columns,
            "ci_low",
            "ci_high",
            "seed_sd",
            "n_seeds",
            "flagged",
        ],
    )
    comparisons = pd.DataFrame(
        _comparison_rows(),
        columns=[
            *MODEL_COLUMNS,
            *value_columns,
            "parent_value",
            "diff",
            "ci_low",
            "ci_high",
            "n_units",
            "n_seeds",
            "flagged",
        ],
    )
    models = pd.DataFrame(
        [
            [
                *_info(m),
                _ppl(m),
                MODELS[m][5],
                _size(m),
                _sparsity(m),
                m in FLAGGED,
                FLAGGED.get(m, ""),
            ]
            for m in MODELS
        ],
        columns=[
            *MODEL_COLUMNS,
            "perplexity",
            "perplexity_ratio",
            "n_parameters",
            "sparsity",
            "flagged",
            "flag_reasons",
        ],
    )
    return Tables(
        metrics=metrics,
        comparisons=comparisons,
        models=models,
        calibration=calibration_table() if with_optional else None,
        audit=audit_table() if with_optional else None,
    )


def calibration_table() -> pd.DataFrame:
    rows = []
    for s, scorer in enumerate(("profanity_check", "jigsaw_bilstm")):
        for t, text in enumerate(("prompt", "continuation", "all")):
            auc = math.nan if (s, text) == (1, "continuation") else 0.9 - 0.1 * s - 0.05 * t
            for rule, threshold in (("fixed", 0.5), ("matched", 0.3 + 0.1 * s)):
                kappa = 0.4 + 0.1 * t - 0.2 * s + (0.15 if rule == "matched" else 0.0)
                rows.append(
                    [
                        scorer,
                        text,
                        100,
                        20,
                        auc,
                        0.6 - 0.1 * t,
                        0.5,
                        rule,
                        threshold,
                        0.2,
                        0.25,
                        0.7,
                        0.6,
                        kappa,
                    ]
                )
    return pd.DataFrame(
        rows,
        columns=[
            "scorer",
            "text",
            "n",
            "n_toxic",
            "roc_auc",
            "spearman",
            "perspective_threshold",
            "threshold_rule",
            "scorer_threshold",
            "share_toxic_perspective",
            "share_toxic_scorer",
            "precision",
            "recall",
            "kappa",
        ],
    )


def audit_table() -> pd.DataFrame:
    rows = []
    for j, (group, domain) in enumerate(GROUPS.items()):
        rows.append(
            ["profanity_check", domain, group, 14, 0.02 + 0.03 * j, 0.01, 0.1 * (j % 3), math.nan]
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "scorer",
            "domain",
            "group",
            "n_templates",
            "mean",
            "sd",
            "share_toxic",
            "domain_spread",
        ],
    )
    spread = frame.groupby("domain")["mean"].agg(lambda s: s.max() - s.min())
    frame["domain_spread"] = frame["domain"].map(spread)
    return frame


def subset(tables: Tables, keep) -> Tables:
    """``tables`` with only the models for which ``keep(models row)`` is true."""
    models = tables.models[tables.models.apply(keep, axis=1)]
    names = set(models["model"])
    return Tables(
        tables.metrics[tables.metrics["model"].isin(names)],
        tables.comparisons[tables.comparisons["model"].isin(names)],
        models,
        tables.calibration,
        tables.audit,
    )


def options(**changes) -> FigureOptions:
    base = {
        "toxicity_promptset": RTP,
        "bias_promptset": BOLD,
        "confidence": 0.95,
        "group_domains": GROUPS,
        "max_perplexity_ratio": 2.0,
    }
    return FigureOptions(**{**base, **changes})


# --------------------------------------------------------------------------- reading artists back

REPO = Path(__file__).resolve().parents[2]


def draw(name: str, tables: Tables | None = None, **changes):
    """Figure ``name`` drawn (not saved) from ``tables`` (default: the synthetic study)."""
    tables = synthetic_tables() if tables is None else tables
    return FIGURES[name].draw(tables, Path(f"/nonexistent/{name}.png"), options(**changes))


def by_gid(fig) -> dict[str, list]:
    """Every line and patch of ``fig`` with a gid, by gid."""
    found: dict[str, list] = {}
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.patches]:
            if artist.get_gid():
                found.setdefault(artist.get_gid(), []).append(artist)
    return found


def texts(fig) -> list[str]:
    """Every piece of text of ``fig``: titles, labels, ticks, legends, annotations."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def legend_labels(fig) -> set[str]:
    labels = set()
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is not None:
            labels |= {t.get_text() for t in legend.get_texts()}
    return labels


def hollow(line) -> bool:
    face = line.get_markerfacecolor()
    return (isinstance(face, str) and face == "none") or matplotlib.colors.to_rgba(face)[3] == 0


def value(
    tables: Tables, model: str, metric: str, promptset: str | None = RTP, group=None
) -> float:
    return float(metric_values(tables.metrics, metric, promptset, group).at[model, "value"])


def no_data_shown(fig) -> bool:
    return any(t.startswith("no data") for t in texts(fig))


# --------------------------------------------------------------------------- the registry


def test_registry_lists_every_figure_in_report_order_with_its_caption() -> None:
    assert figure_names() == [
        "toxicity_by_level",
        "quality_vs_toxicity",
        "contrasts",
        "distillation",
        "bias_heatmap",
        "sentiment_by_group",
        "intrinsic_bias",
        "scorer_calibration",
        "scorer_audit",
    ]
    for spec in figure_specs():
        assert spec.caption == f"report/{spec.name}.rst"
        assert spec.category in ("Toxicity", "Quality", "Bias", "Scorer")


@pytest.mark.parametrize("name", figure_names())
def test_each_caption_renders_as_the_report_does_with_the_configured_level(name: str) -> None:
    """Snakemake renders a caption with Jinja (``snakemake.config``), then docutils."""
    import types

    import jinja2
    from docutils.core import publish_parts

    source = (REPO / FIGURES[name].caption).read_text()
    config = {"bootstrap": {"confidence": 0.9}}
    text = (
        jinja2.Environment(undefined=jinja2.StrictUndefined)
        .from_string(source)
        .render(snakemake=types.SimpleNamespace(config=config))
    )
    with warnings.catch_warnings():  # docutils 0.22 deprecates writer_name, which Snakemake uses
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        publish_parts(
            text, writer_name="html", settings_overrides={"halt_level": 2, "report_level": 2}
        )
    text = " ".join(text.split())
    assert "**Look at**" in text
    assert "95" not in text
    if "interval" in text and name != "scorer_audit":
        assert "90 % bootstrap interval" in text or "90 % interval" in text


def test_a_figure_registered_later_is_drawn_by_plot_all(tmp_path: Path) -> None:
    seen = []

    @register_figure("zz_throwaway", category="Quality", order=999)
    def throwaway(tables: Tables, out_path: Path, opts: FigureOptions):
        from compfair.plots.style import new_figure

        seen.append(len(tables.models))
        fig = new_figure(3, 2)
        fig.add_subplot().plot([0, 1], [1, 2])
        return fig

    try:
        assert figure_names()[-1] == "zz_throwaway"
        with pytest.raises(ValueError, match="already registered"):
            register_figure("zz_throwaway", category="Quality")(lambda t, p, o: None)
        paths = plot_all(synthetic_tables(), tmp_path, options())
    finally:
        unregister_figure("zz_throwaway")
    assert "zz_throwaway" not in figure_names()
    assert seen == [len(MODELS)]
    assert [p.name for p in paths] == [f"{n}.png" for n in [*figure_names(), "zz_throwaway"]]
    # every file is a complete PNG, and no temporary file is left beside them
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in paths)


def test_register_figure_refuses_bad_names_and_categories() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        register_figure("Bad-Name", category="Bias")
    with pytest.raises(ValueError, match="category"):
        register_figure("fine", category="Misc")


# --------------------------------------------------------------------------- tables and styles


def test_read_tables_keeps_levels_as_labels_and_names_a_missing_column(tmp_path: Path) -> None:
    tables = synthetic_tables()
    paths = {}
    for name in ("metrics", "comparisons", "models", "calibration", "audit"):
        paths[name] = tmp_path / f"{name}.csv"
        write_csv(paths[name], getattr(tables, name))
    read = read_tables(**paths)
    assert read.models.set_index("model").at["magnitude-0.50", "level"] == "0.50"
    assert read.models.set_index("model").at["rtn-8", "level"] == "8"
    assert read.models["flagged"].tolist() == [m in FLAGGED for m in MODELS]
    assert value(read, "kd-0.25", "expected_max_toxicity") == pytest.approx(_emt("kd-0.25", RTP))
    write_csv(paths["models"], tables.models.drop(columns="parent"))
    from compfair.io import InputError

    with pytest.raises(InputError, match=r"models\.csv.*parent"):
        read_tables(**paths)


def test_styles_follow_models_csv_order_and_are_fixed_per_model() -> None:
    styles = model_styles(synthetic_tables())
    assert list(styles) == list(MODELS)
    assert matplotlib.colors.to_hex(styles["base"].colour) == "#4d4d4d"
    assert matplotlib.colors.to_hex(styles["teacher"].colour) == "#1f77b4"
    assert styles["wanda_nm-2of4"].series == "wanda_nm" and styles["rtn_kd-4"].series == "rtn_kd"
    assert styles["rtn-4"].series == "rtn" and styles["rtn-4"].parent == "teacher"
    # one hue per method: its models are shades, the strongest compression darkest
    assert styles["rtn-4"].colour != styles["rtn-8"].colour
    assert sum(styles["rtn-4"].colour[:3]) < sum(styles["rtn-8"].colour[:3])
    assert sum(styles["kd-0.25"].colour[:3]) < sum(styles["kd-0.50"].colour[:3])
    assert len({s.colour for s in styles.values()}) == len(styles)
    assert (
        styles["magnitude-0.50"].flagged
        and styles["magnitude-0.50"].label == "magnitude-0.50 (flagged)"
    )
    assert styles["magnitude-0.50"].face == "none" and styles["kd-0.50"].face != "none"
    assert styles["wanda_nm-2of4"].level_number is None and styles["rtn-8"].level_number == 8.0
    # the same tables give the same styles
    assert model_styles(synthetic_tables()) == styles


def test_group_domains_from_prompts(tmp_path: Path) -> None:
    prompts = tmp_path / "bold.jsonl"
    write_jsonl(
        prompts,
        [
            {"prompt_id": str(i), "text": "x", "domain": d, "group": g}
            for i, (g, d) in enumerate(GROUPS.items())
        ]
        + [{"prompt_id": "n", "text": "x", "domain": None, "group": None}],
    )
    assert group_domains_from_prompts(prompts) == GROUPS


# --------------------------------------------------------------------------- each figure's data


def _axes_titled(fig, *words: str) -> list:
    return [ax for ax in fig.axes if all(w in ax.get_title() for w in words)]


def test_toxicity_by_level_draws_each_method_against_its_own_parent() -> None:
    tables = synthetic_tables()
    fig = draw("toxicity_by_level")
    artists = by_gid(fig)
    (emt_pruning,) = _axes_titled(fig, "Expected max", "pruning of teacher")
    (emt_composed,) = _axes_titled(fig, "Expected max", "quantization of kd-0.50")
    (ratio_pruning,) = _axes_titled(fig, "perplexity", "pruning of teacher")
    # a marker per model at its level (within the dodge) and its value
    for model in ("magnitude-0.10", "magnitude-0.30", "random-0.30", "wanda-0.50", "heads-0.25"):
        (line,) = [a for a in artists[model] if a.axes is emt_pruning]
        x, y = line.get_xydata()[0]
        assert y == pytest.approx(value(tables, model, "expected_max_toxicity"))
        assert x == pytest.approx(float(MODELS[model][2]), abs=0.02)
    # the method's line joins its levels in order
    (line,) = [a for a in artists["series:magnitude"] if a.axes is emt_pruning]
    expected = [
        value(tables, f"magnitude-{lv}", "expected_max_toxicity") for lv in ("0.10", "0.30", "0.50")
    ]
    assert line.get_xydata()[:, 1] == pytest.approx(expected)
    # the N:M level is a categorical point right of the numeric levels, with its own tick
    (nm,) = [a for a in artists["wanda_nm-2of4"] if a.axes is emt_pruning]
    assert nm.get_xydata()[0, 0] > 0.5 + 0.05
    assert "2of4" in [t.get_text() for t in emt_pruning.get_xticklabels()]
    # the composed variant is drawn against kd-0.50, not the teacher: the band is kd-0.50's
    kd = metric_values(tables.metrics, "expected_max_toxicity", RTP).loc["kd-0.50"]
    dashed = [ln.get_ydata()[0] for ln in emt_composed.lines if ln.get_linestyle() == "--"]
    assert dashed == pytest.approx([kd["value"]])
    (band,) = [p for p in emt_composed.patches if p.get_label() == "kd-0.50 95 % CI"]
    corners = band.get_transform().transform(band.get_path().vertices)
    data_y = emt_composed.transData.inverted().transform(corners)[:, 1]
    assert (data_y.min(), data_y.max()) == pytest.approx((kd["lo"], kd["hi"]))
    # fewer bits is more compression: the quantization axis runs 8 -> 4
    left, right = emt_composed.get_xlim()
    assert left > right
    # perplexity ratios from models.csv, the flag limit dotted at 2, the flagged model hollow
    (ratio,) = [a for a in artists["magnitude-0.50"] if a.axes is ratio_pruning]
    assert ratio.get_xydata()[0, 1] == pytest.approx(22.0)
    assert hollow(ratio) and not hollow(
        [a for a in artists["magnitude-0.30"] if a.axes is ratio_pruning][0]
    )
    assert any(ln.get_linestyle() == ":" and ln.get_ydata()[0] == 2.0 for ln in ratio_pruning.lines)
    assert "magnitude-0.50 (flagged)" in legend_labels(fig)
    assert {
        "magnitude",
        "random",
        "wanda",
        "wanda_nm",
        "heads",
        "rtn",
        "gptq",
        "rtn_kd",
        "kd",
        "nokd",
    } <= legend_labels(fig)


def test_toxicity_by_level_says_which_families_are_absent() -> None:
    tables = synthetic_tables()
    fig = draw("toxicity_by_level", subset(tables, lambda r: r["family"] != "quantization"))
    assert "not in this study: quantization" in fig.get_suptitle()
    assert not _axes_titled(fig, "quantization of")
    bare = subset(tables, lambda r: r["family"] in ("base", "finetuned", "reference"))
    assert no_data_shown(draw("toxicity_by_level", bare))


def test_quality_vs_toxicity_places_each_model_by_its_ratio_and_paired_difference() -> None:
    tables = synthetic_tables()
    fig = draw("quality_vs_toxicity")
    left, right = fig.axes[:2]
    artists = by_gid(fig)
    diffs = comparison_values(tables.comparisons, "expected_max_toxicity", RTP)
    with_parent = [m for m in MODELS if MODELS[m][3] is not None]
    assert sorted(diffs.index) == sorted(with_parent)
    for model in with_parent:
        (point,) = [a for a in artists[model] if a.axes is left]
        assert point.get_xydata()[0] == pytest.approx([MODELS[model][5], diffs.at[model, "diff"]])
        assert hollow(point) == (model in FLAGGED)
        (point,) = [a for a in artists[model] if a.axes is right]
        size = (
            _size(model)
            * (1 - _sparsity(model))
            / (_size(MODELS[model][3]) * (1 - _sparsity(MODELS[model][3])))
        )
        assert point.get_xydata()[0, 0] == pytest.approx(size)
    assert "base" not in artists
    # the legend names every model drawn; the flag limit is a vertical line at 2
    assert {m + (" (flagged)" if m in FLAGGED else "") for m in with_parent} <= legend_labels(fig)
    assert any(
        ln.get_linestyle() == ":" and list(ln.get_xdata()) == [2.0, 2.0] for ln in left.lines
    )
    assert left.get_xscale() == "log"
    # the interval of kd-0.25's difference is its error bar
    container = next(c for c in left.containers if c.lines[0].get_gid() == "kd-0.25")
    (segment,) = container.lines[2][0].get_segments()
    assert segment[:, 1] == pytest.approx([diffs.at["kd-0.25", "lo"], diffs.at["kd-0.25", "hi"]])


def test_contrasts_has_one_row_per_parent_model_pair_with_its_interval() -> None:
    tables = synthetic_tables()
    fig = draw("contrasts")
    emt_ax, prob_ax = fig.axes[:2]
    labels = [t.get_text() for t in emt_ax.get_yticklabels()]
    assert labels[0] == "base → teacher"
    assert "gpt2 → distilgpt2" in labels and "kd-0.50 → rtn_kd-8" in labels
    assert "teacher → magnitude-0.50 (flagged)" in labels
    assert len(labels) == sum(MODELS[m][3] is not None for m in MODELS)
    for ax, metric in ((emt_ax, "expected_max_toxicity"), (prob_ax, "toxicity_probability")):
        diffs = comparison_values(tables.comparisons, metric, RTP)
        for container in ax.containers:
            model = container.lines[0].get_gid()
            x, y = container.lines[0].get_xydata()[0]
            assert x == pytest.approx(diffs.at[model, "diff"])
            assert labels[int(y)].split(" → ")[1].split(" ")[0] == model
            (segment,) = container.lines[2][0].get_segments()
            assert segment[:, 0] == pytest.approx([diffs.at[model, "lo"], diffs.at[model, "hi"]])


def test_distillation_bars_are_the_students_values_against_the_teacher() -> None:
    tables = synthetic_tables()
    fig = draw("distillation")
    artists = by_gid(fig)
    for ax, metric, promptset in zip(
        fig.axes[:3],
        ("expected_max_toxicity", "toxicity_probability", "perplexity"),
        (RTP, RTP, None),
        strict=True,
    ):
        for model in ("kd-0.50", "nokd-0.50", "kd-0.25", "nokd-0.25"):
            (bar,) = [a for a in artists[model] if a.axes is ax]
            assert bar.get_height() == pytest.approx(value(tables, model, metric, promptset))
        teacher = value(tables, "teacher", metric, promptset)
        assert any(
            ln.get_ydata()[0] == pytest.approx(teacher)
            for ln in ax.lines
            if ln.get_linestyle() == "--"
        )
    # the flagged control is a hollow, hatched bar
    (bar,) = artists["nokd-0.25"][:1]
    assert bar.get_facecolor()[3] == 0 and bar.get_hatch()
    assert {
        "kd-0.50",
        "kd-0.25",
        "nokd-0.50",
        "nokd-0.25 (flagged)",
        "teacher (parent)",
    } <= legend_labels(fig)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["keep 0.50", "keep 0.25"]


def test_bias_heatmap_cells_are_the_group_means_and_the_differences_to_the_parent() -> None:
    fig = draw("bias_heatmap")
    images = [im for ax in fig.axes for im in ax.get_images() if isinstance(im, AxesImage)]
    assert len(images) == 2
    values, diffs = (np.ma.filled(im.get_array().astype(float), np.nan) for im in images)
    # rows: a header per domain, then its groups in name order
    rows = [g for d in DOMAINS for g in [None, *sorted(g for g in GROUPS if GROUPS[g] == d)]]
    models = list(MODELS)
    changed = [m for m in MODELS if MODELS[m][3] is not None]
    for i, group in enumerate(rows):
        if group is None:
            assert np.isnan(values[i]).all()
            continue
        j = list(GROUPS).index(group)
        assert values[i] == pytest.approx([_sentiment(m, j) for m in models])
        assert diffs[i] == pytest.approx(
            [_sentiment(m, j) - _sentiment(MODELS[m][3], j) for m in changed]
        )
    # a star where the paired interval excludes 0 (odd groups have narrow intervals)
    diff_ax = images[1].axes
    cell = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
        for t in diff_ax.texts
    }
    i_men, i_women = rows.index("men"), rows.index("women")
    kd = changed.index("kd-0.25")
    assert cell[(i_women, kd)].endswith("*") and not cell[(i_men, kd)].endswith("*")
    assert "kd-0.50 − teacher" in [t.get_text() for t in diff_ax.get_xticklabels()]


def test_sentiment_by_group_markers_are_the_group_means() -> None:
    fig = draw("sentiment_by_group")
    artists = by_gid(fig)
    for model in MODELS:
        for j, group in enumerate(GROUPS):
            (marker,) = artists[f"{model}|{group}"]
            assert marker.get_xydata()[0, 0] == pytest.approx(_sentiment(model, j))
            assert hollow(marker) == (model in FLAGGED)
            assert marker.axes.get_title() == GROUPS[group].replace("_", " ")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == [m + (" (flagged)" if m in FLAGGED else "") for m in MODELS]


def test_scorer_calibration_bars_are_the_table_values_at_both_thresholds() -> None:
    table = calibration_table()
    fig = draw("scorer_calibration")
    artists = by_gid(fig)
    for row in table.itertuples():
        for ax, column, rule in (
            (fig.axes[0], "roc_auc", ""),
            (fig.axes[1], "spearman", ""),
            (fig.axes[2], "kappa", row.threshold_rule),
        ):
            expected = getattr(row, column)
            bars = [a for a in artists.get(f"{row.scorer}|{row.text}|{rule}", []) if a.axes is ax]
            if np.isnan(expected):
                assert not bars
            else:
                assert bars[0].get_height() == pytest.approx(expected)
    assert any(t.startswith("n/a") for t in texts(fig))
    assert "jigsaw_bilstm, matched threshold (≥ 0.4)" in legend_labels(fig)


def test_scorer_audit_bars_are_the_group_means() -> None:
    fig = draw("scorer_audit")
    artists = by_gid(fig)
    audit = audit_table()
    for row in audit.itertuples():
        (bar,) = artists[f"profanity_check|{row.group}"]
        assert bar.get_width() == pytest.approx(row.mean)
        assert row.domain.replace("_", " ") in bar.axes.get_title()
        assert f"{row.domain_spread:.3f}" in bar.axes.get_title()


def test_intrinsic_bias_markers_are_the_benchmark_values_beside_the_parent() -> None:
    tables = synthetic_tables()
    fig = draw("intrinsic_bias")
    artists = by_gid(fig)
    for ax, metric, promptset in zip(
        fig.axes[:2],
        ("crows_pairs_stereo_share", "stereoset_ss"),
        ("crows_pairs", "stereoset"),
        strict=True,
    ):
        for y, model in enumerate(MODELS):
            (marker,) = [a for a in artists[model] if a.axes is ax]
            assert marker.get_xydata()[0] == pytest.approx(
                [value(tables, model, metric, promptset), y]
            )
        ticks = [ln for ln in ax.lines if str(ln.get_gid()).startswith("parent:")]
        parent_rows = {int(t.get_ydata()[0]): t.get_xdata()[0] for t in ticks}
        y = list(MODELS).index("rtn_kd-8")
        assert parent_rows[y] == pytest.approx(value(tables, "kd-0.50", metric, promptset))
        assert list(MODELS).index("base") not in parent_rows


# --------------------------------------------------------------------------- missing data, confidence


@pytest.mark.parametrize("name", ["scorer_calibration", "scorer_audit"])
def test_a_missing_optional_table_is_said_in_the_panel(name: str) -> None:
    fig = draw(name, synthetic_tables(with_optional=False))
    assert no_data_shown(fig)


WITH_INTERVALS = [
    "toxicity_by_level",
    "quality_vs_toxicity",
    "contrasts",
    "distillation",
    "bias_heatmap",
    "sentiment_by_group",
    "intrinsic_bias",
]


@pytest.mark.parametrize("name", WITH_INTERVALS)
def test_figures_of_an_empty_study_say_no_data(name: str, tmp_path: Path) -> None:
    tables = synthetic_tables()
    empty = Tables(tables.metrics.iloc[:0], tables.comparisons.iloc[:0], tables.models.iloc[:0])
    fig = draw(name, empty)
    assert no_data_shown(fig)
    fig.savefig(tmp_path / "empty.png")


def test_the_smoke_shape_of_tables_draws_every_figure(tmp_path: Path) -> None:
    """One level per method, no quantization, no audit, a one-class calibration."""
    small = subset(
        synthetic_tables(),
        lambda r: r["model"] in ("base", "teacher", "kd-0.50", "magnitude-0.50", "random-0.10"),
    )
    small.calibration = calibration_table().assign(roc_auc=np.nan, n_toxic=100)
    small.audit = None
    paths = plot_all(small, tmp_path, options())
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in paths)
    for name in WITH_INTERVALS:  # drawn with data, naming what the smoke study has
        assert not no_data_shown(draw(name, small)), name
    assert "magnitude" in " | ".join(texts(draw("toxicity_by_level", small)))
    assert "kd-0.50" in " | ".join(texts(draw("distillation", small)))


@pytest.mark.parametrize("name", WITH_INTERVALS)
def test_interval_labels_use_the_configured_confidence(name: str) -> None:
    words = " | ".join(texts(draw(name, confidence=0.9)))
    assert "90 %" in words and "95 %" not in words
    assert "95 %" in " | ".join(texts(draw(name)))
