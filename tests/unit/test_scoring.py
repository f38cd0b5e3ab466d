"""Tests for compfair.scoring: registry and plug-ins, option checks, offline scorers, VADER, the CSV."""

from __future__ import annotations

import importlib
import importlib.util
import io
import pickle
import pkgutil
import sys
import types
import urllib.error
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import (
    BertTokenizer,
)

from compfair.io import InputError, write_jsonl
from compfair.plugins import load_plugins
from compfair.scoring import (
    BUILTIN_PACKAGE,
    JIGSAW_LABELS,
    JIGSAW_MAXLEN,
    REGARD_LABELS,
    SCORERS,
    ToxicityScorer,
    check_probs,
    get_scorer,
    load_builtin_scorers,
    regard_scores,
    register_scorer,
    score_generations,
    scorer_option_problems,
    vader_compound,
)
from compfair.scoring.scorers.jigsaw_bilstm import (
    _bilstm_module,
    _keras_word_ids,
    _TokenizerState,
    _TokenizerUnpickler,
)
from tests.support import build_random_detoxify_checkpoint, build_random_gpt2_classifier

PROFANE = "You are a fucking stupid piece of shit."
NEUTRAL = "The library opens at nine in the morning."


def test_registry_knows_builtin_scorers() -> None:
    builtin = ["detoxify", "hf_classifier", "jigsaw_bilstm", "profanity_check"]
    assert set(builtin) <= set(SCORERS)
    assert [n for n in builtin if SCORERS[n].uses_gpu] == ["detoxify", "hf_classifier"]
    assert isinstance(get_scorer("profanity_check"), ToxicityScorer)
    assert get_scorer("profanity_check").name == "profanity_check"


def test_unknown_scorer_lists_known_names() -> None:
    with pytest.raises(InputError) as err:
        get_scorer("perspective_api")
    assert "perspective_api" in str(err.value)
    assert "profanity_check" in str(err.value) and "hf_classifier" in str(err.value)
    assert "detoxify" in str(err.value)
    with pytest.raises(
        InputError, match="unknown toxicity scorer 'detox'; did you mean 'detoxify'"
    ):
        get_scorer("detox")


def test_unknown_option_is_an_input_error() -> None:
    with pytest.raises(InputError, match="batch_size"):
        get_scorer("profanity_check", bach_size=3)


def test_registering_a_new_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("compfair.scoring.SCORERS", dict(SCORERS))

    @register_scorer("constant")
    class Constant(ToxicityScorer):
        def __init__(self, value: float = 0.25) -> None:
            self.value = value

        def score(self, texts: list[str]) -> np.ndarray:
            return np.full(len(texts), self.value)

    scorer = get_scorer("constant", value=0.75)
    assert scorer.name == "constant"
    assert scorer.score(["a", "b"]).tolist() == [0.75, 0.75]


def test_register_scorer_refuses_a_taken_name_and_a_non_scorer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("compfair.scoring.SCORERS", dict(SCORERS))

    class Other(ToxicityScorer):
        def score(self, texts: list[str]) -> np.ndarray:
            return np.zeros(len(texts))

    with pytest.raises(ValueError, match="'profanity_check' is already registered"):
        register_scorer("profanity_check")(Other)
    with pytest.raises(TypeError, match="not a ToxicityScorer subclass"):
        register_scorer("not_a_scorer")(dict)  # type: ignore[arg-type]


def test_every_builtin_module_registers_the_scorer_it_is_named_after() -> None:
    package = importlib.import_module(BUILTIN_PACKAGE)
    modules = sorted(info.name for info in pkgutil.iter_modules(package.__path__))
    assert {"profanity_check", "hf_classifier", "detoxify", "jigsaw_bilstm"} <= set(modules)
    for module in modules:
        assert SCORERS[module].__module__ == f"{BUILTIN_PACKAGE}.{module}"
    assert load_builtin_scorers() is SCORERS


#: A throwaway scorer plug-in: the share of a text's letters that are vowels, times ``scale``.
VOWEL_PLUGIN = """
import numpy as np

from compfair.scoring import ToxicityScorer, check_probs, register_scorer


@register_scorer("vowel_share")
class VowelShare(ToxicityScorer):
    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    def score(self, texts):
        shares = []
        for text in texts:
            letters = [c for c in text.lower() if c.isalpha()]
            shares.append(sum(c in "aeiou" for c in letters) / len(letters) if letters else 0.0)
        return check_probs(np.array(shares) * self.scale, len(texts), self.name)
"""


def test_a_scorer_is_one_file(tmp_path: Path) -> None:
    """One module registers a scorer; the config check and score_generations then know it."""
    plugin = tmp_path / "vowel_share_scorer.py"
    plugin.write_text(VOWEL_PLUGIN)
    gens = tmp_path / "gens.jsonl"
    texts = ["aeiou", "bcd", "", "Abba!"]
    write_jsonl(
        gens, [{"prompt_id": "p", "sample": k, "continuation": t} for k, t in enumerate(texts)]
    )
    load_plugins([str(plugin)])
    try:
        assert SCORERS["vowel_share"].name == "vowel_share"
        assert scorer_option_problems("vowel_share", {"scale": 0.5}) == []
        assert scorer_option_problems("vowel_share", {"scael": 0.5}) == [
            "config key scoring.scorer_options.scael: scorer 'vowel_share' takes no option "
            "'scael' (it takes: scale)"
        ]
        out = tmp_path / "scores.csv"
        assert score_generations(gens, out, "vowel_share", {"scale": 0.5}) == 4
        frame = pd.read_csv(out, keep_default_na=False)
        assert list(frame.columns) == ["prompt_id", "sample", "toxicity", "sentiment", "empty"]
        # vowels / letters, halved: 5/5, 0/3, no letters, 2/4 ("!" is no letter)
        assert frame["toxicity"].tolist() == [0.5, 0.0, 0.0, 0.25]
        assert frame["empty"].tolist() == [False, False, True, False]
    finally:
        del SCORERS["vowel_share"]
        sys.modules.pop("compfair_plugin_vowel_share_scorer", None)
    assert "vowel_share" not in SCORERS
    with pytest.raises(InputError, match="unknown toxicity scorer 'vowel_share'"):
        get_scorer("vowel_share")


def test_scorer_option_problems_name_the_config_keys() -> None:
    assert scorer_option_problems("profanity_check", {"batch_size": 8}) == []
    assert scorer_option_problems("jigsaw_bilstm", {"label": "threat"}) == []
    assert scorer_option_problems("nope", {}) == [
        "config key scoring.toxicity_scorer: unknown scorer 'nope' "
        "(known: detoxify, hf_classifier, jigsaw_bilstm, profanity_check)"
    ]
    assert scorer_option_problems("hf_classifier", {"toxic_lable": "x"}) == [
        "config key scoring.scorer_options.model: required by scorer 'hf_classifier'",
        "config key scoring.scorer_options.toxic_lable: scorer 'hf_classifier' takes no option "
        "'toxic_lable' (it takes: model, toxic_label, batch_size, max_length, device)",
    ]
    # get_scorer refuses with the same messages, before the scorer loads anything
    with pytest.raises(InputError) as err:
        get_scorer("hf_classifier")
    assert (
        str(err.value)
        == "config key scoring.scorer_options.model: required by scorer 'hf_classifier'"
    )


def test_a_scorer_taking_any_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("compfair.scoring.SCORERS", dict(SCORERS))

    @register_scorer("open_options")
    class OpenOptions(ToxicityScorer):
        def __init__(self, level: float, **extra: object) -> None:
            self.level, self.extra = level, extra

        def score(self, texts: list[str]) -> np.ndarray:
            return check_probs([self.level] * len(texts), len(texts), self.name)

    assert scorer_option_problems("open_options", {"level": 0.3, "anything": 1}) == []
    assert scorer_option_problems("open_options", {"anything": 1}) == [
        "config key scoring.scorer_options.level: required by scorer 'open_options'"
    ]
    scorer = get_scorer("open_options", level=0.3, anything=1)
    assert scorer.extra == {"anything": 1} and scorer.score(["a", "b"]).tolist() == [0.3, 0.3]


def test_check_probs_refuses_wrong_shapes_and_ranges() -> None:
    assert check_probs([[0.1], [0.9]], 2, "x").tolist() == [0.1, 0.9]
    with pytest.raises(RuntimeError, match="'x' returned 3 scores for 2 texts"):
        check_probs([0.1, 0.2, 0.3], 2, "x")
    for bad in ([0.1, 1.5], [-0.1, 0.5], [np.nan, 0.5]):
        with pytest.raises(RuntimeError, match="outside \\[0, 1\\]"):
            check_probs(bad, 2, "x")


def test_profanity_check_ranks_profane_above_neutral() -> None:
    probs = get_scorer("profanity_check", batch_size=1).score([PROFANE, NEUTRAL, ""])
    assert probs.shape == (3,)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert probs[0] > 0.8
    assert probs[1] < 0.2


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_gpt2_classifier(tmp_path_factory.mktemp("clf"), ["neutral", "toxic"])


def test_hf_classifier_probabilities(classifier_dir: Path) -> None:
    scorer = get_scorer(
        "hf_classifier", model=str(classifier_dir), toxic_label="toxic", batch_size=2
    )
    texts = [PROFANE, NEUTRAL, "", "word " * 100]  # empty and over-long texts too
    probs = scorer.score(texts)
    assert probs.shape == (4,)
    assert ((probs >= 0) & (probs <= 1)).all()
    # the complement label's probability adds up to one under the softmax
    other = get_scorer("hf_classifier", model=str(classifier_dir), toxic_label="NEUTRAL")
    np.testing.assert_allclose(probs + other.score(texts), 1.0, atol=1e-5)


def test_hf_classifier_unknown_label(classifier_dir: Path) -> None:
    with pytest.raises(InputError) as err:
        get_scorer("hf_classifier", model=str(classifier_dir), toxic_label="insult")
    assert "insult" in str(err.value) and "neutral, toxic" in str(err.value)


# ---------------------------------------------------------------- regard


def test_regard_scores_columns_and_probabilities(tmp_path: Path) -> None:
    # labels in a different order than the output columns, and in upper case
    folder = build_random_gpt2_classifier(tmp_path, ["POSITIVE", "other", "negative", "Neutral"])
    texts = ["She was a kind and brilliant doctor.", "He was a thief.", ""]
    frame = regard_scores(texts, model=str(folder), batch_size=2)
    assert (
        list(frame.columns) == list(REGARD_LABELS) == ["negative", "neutral", "positive", "other"]
    )
    assert len(frame) == 3
    np.testing.assert_allclose(frame.sum(axis=1), 1.0, atol=1e-5)
    # the columns follow the label names, not the label order of the model
    clf = get_scorer("hf_classifier", model=str(folder), toxic_label="negative")
    np.testing.assert_allclose(frame["negative"], clf.score(texts), atol=1e-6)


def test_regard_scores_needs_the_four_classes(classifier_dir: Path) -> None:
    with pytest.raises(InputError, match="lacks label.*negative.*its labels are: neutral, toxic"):
        regard_scores(["x"], model=str(classifier_dir), batch_size=2)
    with pytest.raises(InputError, match="regard: cannot load classifier"):
        regard_scores(["x"], model=str(classifier_dir / "missing"), batch_size=2)


# ---------------------------------------------------------------- detoxify


class _FakeDetoxify:
    """Stands in for ``detoxify.Detoxify``: toxicity = length / 100, batches recorded."""

    calls: ClassVar[list[tuple]] = []

    def __init__(
        self,
        model_type="original",
        checkpoint=None,
        device="cpu",
        huggingface_config_path=None,
    ) -> None:
        type(self).calls.append(("init", model_type, checkpoint, device, huggingface_config_path))

    def predict(self, texts):
        type(self).calls.append(("predict", len(texts)))
        return {"toxicity": [min(len(t) / 100, 1.0) for t in texts], "insult": [0.0] * len(texts)}


def _fake_detoxify_module(cls: type = _FakeDetoxify) -> types.ModuleType:
    module = types.ModuleType("detoxify")
    module.Detoxify = cls
    module.detoxify = types.SimpleNamespace(
        MODEL_URLS={"original": "https://github.com/unitaryai/detoxify/releases/original.ckpt"}
    )
    return module


def test_detoxify_scores_toxicity_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "detoxify", _fake_detoxify_module())
    _FakeDetoxify.calls = []
    scorer = get_scorer("detoxify", batch_size=2, device="cpu")
    assert scorer.name == "detoxify"
    texts = ["a" * 10, "b" * 50, "", "c" * 200, "d"]
    np.testing.assert_allclose(scorer.score(texts), [0.1, 0.5, 0.0, 1.0, 0.01])
    assert _FakeDetoxify.calls[0] == ("init", "original", None, "cpu", None)
    assert [c[1] for c in _FakeDetoxify.calls[1:]] == [2, 2, 1]
    assert scorer.score([]).shape == (0,)


def test_detoxify_options_and_local_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "detoxify", _fake_detoxify_module())
    _FakeDetoxify.calls = []
    get_scorer("detoxify", variant="unbiased", device="cpu")
    assert _FakeDetoxify.calls[0] == ("init", "unbiased", None, "cpu", None)
    ckpt = tmp_path / "toxic_debiased.ckpt"
    ckpt.write_bytes(b"x")  # not a checkpoint: refused before the library sees it
    with pytest.raises(InputError, match="toxic_debiased.ckpt refused.*scorer_options.checkpoint"):
        get_scorer("detoxify", variant="unbiased", checkpoint=str(ckpt), device="cpu")
    assert len(_FakeDetoxify.calls) == 1
    # device None: CUDA when available
    get_scorer("detoxify")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert _FakeDetoxify.calls[-1][3] == expected
    with pytest.raises(InputError, match="variant must be one of original, unbiased"):
        get_scorer("detoxify", variant="multilingual")
    with pytest.raises(InputError, match="checkpoint file not found.*scorer_options.checkpoint"):
        get_scorer("detoxify", checkpoint=str(tmp_path / "none.ckpt"))
    with pytest.raises(InputError, match="takes no option 'varient'"):
        get_scorer("detoxify", varient="original")


def test_detoxify_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "detoxify", None)  # import detoxify -> ImportError
    with pytest.raises(InputError, match="pip install detoxify"):
        get_scorer("detoxify")


def test_detoxify_offline_download_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    class Offline(_FakeDetoxify):
        def __init__(self, *args, **kwargs) -> None:
            raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setitem(sys.modules, "detoxify", _fake_detoxify_module(Offline))
    with pytest.raises(InputError) as err:
        get_scorer("detoxify", device="cpu")
    message = str(err.value)
    assert "https://github.com/unitaryai/detoxify/releases/original.ckpt" in message
    assert "scoring.scorer_options.checkpoint" in message


def test_detoxify_real_package_with_a_local_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed detoxify package end to end, offline, on a random tiny BERT."""
    pytest.importorskip("detoxify")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ckpt, folder, model = build_random_detoxify_checkpoint(tmp_path)
    scorer = get_scorer(
        "detoxify",
        checkpoint=str(ckpt),
        device="cpu",
        batch_size=2,
        huggingface_config_path=str(folder),
    )
    texts = ["you are nice", "you are awful", "nice"]
    probs = scorer.score(texts)
    # the reference: the same weights, sigmoid of the first ("toxic") logit
    enc = BertTokenizer.from_pretrained(folder)(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = torch.sigmoid(model(**enc).logits[:, 0]).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert scorer.score([]).shape == (0,)


def test_vader_on_clear_sentences() -> None:
    scores = vader_compound(
        ["I love this, it is wonderful and great!", "This is terrible, I hate it, awful.", ""]
    )
    assert scores[0] > 0.5
    assert scores[1] < -0.5
    assert scores[2] == 0.0


def test_score_generations_writes_every_row(tmp_path: Path) -> None:
    gens = tmp_path / "gens.jsonl"
    write_jsonl(
        gens,
        [
            {
                "prompt_id": "007",
                "sample": 0,
                "prompt": "x",
                "continuation": PROFANE,
                "n_new_tokens": 9,
            },
            {"prompt_id": "007", "sample": 1, "prompt": "x", "continuation": "", "n_new_tokens": 0},
            {
                "prompt_id": "8",
                "sample": 0,
                "prompt": "y",
                "continuation": "What a lovely, happy day!",
                "n_new_tokens": 6,
            },
        ],
    )
    out = tmp_path / "scores.csv"
    assert score_generations(gens, out, "profanity_check", {}) == 3
    assert out.read_text().splitlines()[0] == "prompt_id,sample,toxicity,sentiment,empty"
    frame = pd.read_csv(out, dtype={"prompt_id": str})
    assert frame["prompt_id"].tolist() == ["007", "007", "8"]
    assert frame["sample"].tolist() == [0, 1, 0]
    assert frame["toxicity"].between(0, 1).all()
    assert frame["toxicity"][0] > frame["toxicity"][2]
    assert frame["sentiment"][1] == 0.0 and frame["sentiment"][2] > 0.5
    assert frame["empty"].tolist() == [False, True, False]


def test_score_generations_unknown_scorer_leaves_no_file(tmp_path: Path) -> None:
    gens = tmp_path / "gens.jsonl"
    write_jsonl(gens, [{"prompt_id": "a", "sample": 0, "continuation": "hi"}])
    with pytest.raises(InputError):
        score_generations(gens, tmp_path / "s.csv", "nope", {})
    assert not (tmp_path / "s.csv").exists()


def test_score_generations_adds_regard_when_configured(tmp_path: Path) -> None:
    folder = build_random_gpt2_classifier(tmp_path, ["negative", "neutral", "positive", "other"])
    gens = tmp_path / "g.jsonl"
    write_jsonl(
        gens,
        [
            {"prompt_id": "p", "sample": k, "continuation": t}
            for k, t in enumerate(["kind", "", "rude"])
        ],
    )
    score_generations(gens, tmp_path / "s.csv", "profanity_check", {}, regard_model=str(folder))
    frame = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    regard = ["regard_negative", "regard_neutral", "regard_positive", "regard_other"]
    assert list(frame.columns) == ["prompt_id", "sample", "toxicity", "sentiment", "empty", *regard]
    np.testing.assert_allclose(frame[regard].sum(axis=1), 1.0, atol=1e-5)
    score_generations(gens, tmp_path / "plain.csv", "profanity_check", {})
    assert list(pd.read_csv(tmp_path / "plain.csv").columns) == [
        "prompt_id",
        "sample",
        "toxicity",
        "sentiment",
        "empty",
    ]


# ---------------------------------------------------------------- jigsaw_bilstm


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _keras_lstm(
    x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """Keras' LSTM (gates i, f, c, o; sigmoid and tanh), every step's output: (T, units)."""
    units = recurrent.shape[0]
    h, c, out = np.zeros(units), np.zeros(units), []
    for x_t in x:
        z = x_t @ kernel + h @ recurrent + bias
        i, f, g, o = (z[k * units : (k + 1) * units] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def _random_bilstm_weights(vocab: int = 12, dim: int = 4, units: int = 3, hidden: int = 5):
    rng = np.random.default_rng(0)
    shapes = {
        "embedding": (vocab, dim),
        "forward_kernel": (dim, 4 * units),
        "forward_recurrent": (units, 4 * units),
        "forward_bias": (4 * units,),
        "backward_kernel": (dim, 4 * units),
        "backward_recurrent": (units, 4 * units),
        "backward_bias": (4 * units,),
        "dense_kernel": (2 * units, hidden),
        "dense_bias": (hidden,),
        "dense_1_kernel": (hidden, len(JIGSAW_LABELS)),
        "dense_1_bias": (len(JIGSAW_LABELS),),
    }
    return {k: rng.normal(size=v).astype(np.float32) for k, v in shapes.items()}


def test_bilstm_module_matches_a_numpy_keras_forward() -> None:
    """The torch rebuild computes what the Keras layers compute, weight layout included."""
    w = _random_bilstm_weights()
    ids = np.array([[0, 0, 3, 7, 1], [2, 11, 5, 5, 9]])
    with torch.no_grad():
        got = _bilstm_module(w)(torch.from_numpy(ids)).numpy()
    for row, seq in enumerate(ids):
        x = w["embedding"][seq].astype(float)
        fwd = _keras_lstm(x, w["forward_kernel"], w["forward_recurrent"], w["forward_bias"])
        bwd = _keras_lstm(
            x[::-1], w["backward_kernel"], w["backward_recurrent"], w["backward_bias"]
        )
        states = np.concatenate([fwd, bwd[::-1]], axis=1)  # Bidirectional: concat, re-aligned
        pooled = states.max(axis=0)
        hidden = np.maximum(pooled @ w["dense_kernel"] + w["dense_bias"], 0)
        expected = _sigmoid(hidden @ w["dense_1_kernel"] + w["dense_1_bias"])
        np.testing.assert_allclose(got[row], expected, atol=1e-5)


def test_keras_word_ids_follow_the_keras_tokenizer() -> None:
    state = _TokenizerState()
    state.__dict__.update(
        word_index={"you": 1, "are": 2, "nice": 3, "rare": 7},
        num_words=5,
        filters='!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n',
        lower=True,
        split=" ",
    )
    # lower-cased, punctuation splits words, unknown and index >= num_words words dropped
    assert _keras_word_ids("You ARE nice, you-are rare! zebra", state) == [1, 2, 3, 1, 2]
    assert _keras_word_ids("", state) == []


def test_tokenizer_unpickler_refuses_anything_but_the_tokenizer() -> None:
    payload = pickle.dumps(types.SimpleNamespace(a=1))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load types.SimpleNamespace"):
        _TokenizerUnpickler(io.BytesIO(payload)).load()


_HAS_JIGSAW = importlib.util.find_spec("toxic_classifier") is not None and (
    importlib.util.find_spec("h5py") is not None
)


@pytest.mark.skipif(not _HAS_JIGSAW, reason="needs toxic-comment-classifier and h5py")
def test_jigsaw_bilstm_gives_the_packages_own_keras_scores() -> None:
    """Known answers: the wheel's own Keras model (TensorFlow 2.21) on these texts."""
    scorer = get_scorer("jigsaw_bilstm", batch_size=2)
    texts = [
        PROFANE,
        NEUTRAL,
        "I am a gay person.",
        "I am a tall person.",
        "",
        "I will kill you and your family.",
    ]
    keras = [0.999676, 0.00831, 0.845837, 0.345331, 0.067534, 0.797015]
    np.testing.assert_allclose(scorer.score(texts), keras, atol=2e-6)
    threat = get_scorer("jigsaw_bilstm", label="threat").score([texts[-1]])
    assert threat[0] == pytest.approx(0.237254, abs=2e-6)
    # a text longer than the model reads keeps its last JIGSAW_MAXLEN words
    ids = scorer.token_ids(["the " * (JIGSAW_MAXLEN + 20) + "you"])
    assert ids.shape == (1, JIGSAW_MAXLEN) and ids[0, -1] == scorer.tokenizer.word_index["you"]


def test_jigsaw_bilstm_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="label must be one of toxic, severe_toxic"):
        get_scorer("jigsaw_bilstm", label="hate")
    with pytest.raises(InputError, match="model.weights.h5 not found.*scorer_options.model_dir"):
        get_scorer("jigsaw_bilstm", model_dir=str(tmp_path))


# ---------------------------------------------------------------- masked toxicity


@pytest.fixture
def says_gay(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register ``says_gay``: 1.0 iff the text contains "gay" (any case), else 0.0."""
    monkeypatch.setattr("compfair.scoring.SCORERS", dict(SCORERS))

    @register_scorer("says_gay")
    class SaysGay(ToxicityScorer):
        def score(self, texts: list[str]) -> np.ndarray:
            return np.array([float("gay" in t.lower()) for t in texts])

    return "says_gay"


def test_score_generations_writes_masked_toxicity(tmp_path: Path, says_gay: str) -> None:
    prompts = tmp_path / "bold.jsonl"
    write_jsonl(
        prompts,
        [
            {"prompt_id": "g1", "text": "Gay people", "domain": "orientation", "group": "gay"},
            {"prompt_id": "t1", "text": "Tall people", "domain": "height", "group": "tall"},
        ],
    )
    gens = tmp_path / "gens.jsonl"
    continuations = [
        ("g1", " are gay and proud."),
        ("g1", " live here."),
        ("t1", " said gay things."),
    ]
    write_jsonl(gens, [{"prompt_id": p, "sample": 0, "continuation": c} for p, c in continuations])
    out = tmp_path / "scores.csv"
    assert score_generations(gens, out, says_gay, {}, prompts_path=prompts) == 3
    frame = pd.read_csv(out)
    assert list(frame.columns) == [
        "prompt_id",
        "sample",
        "toxicity",
        "toxicity_masked",
        "sentiment",
        "empty",
    ]
    # g1's "gay" is its own group's name (masked); t1's is not tall's name (kept)
    assert frame["toxicity"].tolist() == [1.0, 0.0, 1.0]
    assert frame["toxicity_masked"].tolist() == [0.0, 0.0, 1.0]


def test_score_generations_masking_needs_groups_and_ids(tmp_path: Path, says_gay: str) -> None:
    rtp = tmp_path / "rtp.jsonl"
    write_jsonl(rtp, [{"prompt_id": "r1", "text": "x", "domain": None, "group": None}])
    gens = tmp_path / "gens.jsonl"
    write_jsonl(gens, [{"prompt_id": "r1", "sample": 0, "continuation": "gay"}])
    score_generations(gens, tmp_path / "s.csv", says_gay, {}, prompts_path=rtp)
    assert "toxicity_masked" not in pd.read_csv(tmp_path / "s.csv").columns  # no groups
    write_jsonl(gens, [{"prompt_id": "zz", "sample": 0, "continuation": "gay"}])
    bold = tmp_path / "bold.jsonl"
    write_jsonl(bold, [{"prompt_id": "g1", "text": "x", "domain": "o", "group": "gay"}])
    with pytest.raises(InputError, match="prompt_id.*zz not in"):
        score_generations(gens, tmp_path / "t.csv", says_gay, {}, prompts_path=bold)
    assert not (tmp_path / "t.csv").exists()
