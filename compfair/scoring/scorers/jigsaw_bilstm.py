"""``jigsaw_bilstm``: a BiLSTM trained on the Jigsaw Toxic Comment data, run in torch.

The weights and the word index ship in the MIT-licensed
``toxic-comment-classifier`` wheel as a Keras model; they are read with h5py
and the model is rebuilt in torch, so TensorFlow is not needed. The tokenizer
pickle is read by an unpickler that admits only the Keras tokenizer's data.
"""

from __future__ import annotations

import collections
import importlib.util
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from compfair.io import InputError
from compfair.scoring import ToxicityScorer, check_probs, register_scorer

#: Output labels of the Jigsaw BiLSTM, in the order of its last layer.
JIGSAW_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")

#: Tokens the Jigsaw BiLSTM reads (its training length; longer texts keep their last ones).
JIGSAW_MAXLEN = 100

_KERAS_TOKENIZER_MODULES = ("keras.src.legacy.preprocessing.text", "keras.preprocessing.text")


class _TokenizerState:
    """Receives the attributes of a pickled Keras ``Tokenizer`` (no Keras needed)."""


class _TokenizerUnpickler(pickle.Unpickler):
    """Unpickles a Keras ``Tokenizer`` and nothing else: no code of the file is run."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "Tokenizer" and module in _KERAS_TOKENIZER_MODULES:
            return _TokenizerState
        if module == "collections" and name in ("OrderedDict", "defaultdict"):
            return getattr(collections, name)
        if module == "builtins" and name == "int":
            return int
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a tokenizer file")


def _keras_word_ids(text: str, state: _TokenizerState) -> list[int]:
    """Keras ``Tokenizer.texts_to_sequences`` for one text (word level, no OOV token)."""
    if getattr(state, "lower", True):
        text = text.lower()
    split = getattr(state, "split", " ")
    text = text.translate(str.maketrans(dict.fromkeys(getattr(state, "filters", ""), split)))
    num_words = getattr(state, "num_words", None)
    ids = []
    for word in text.split(split):
        i = state.word_index.get(word) if word else None
        # Keras drops words outside the top num_words (no oov_token is set).
        if i is not None and (not num_words or i < num_words):
            ids.append(i)
    return ids


def _bilstm_module(weights: dict[str, np.ndarray]) -> Any:
    """The Keras model rebuilt in torch: Embedding, BiLSTM, max over time, Dense x2.

    Keras stores kernels as ``(in, out)`` and one LSTM bias; torch wants
    ``(out, in)`` and two biases (the second set to zero). Both order the
    LSTM gates input, forget, cell, output.
    """
    import torch
    from torch import nn

    vocab, dim = weights["embedding"].shape
    units = weights["forward_recurrent"].shape[0]
    hidden, n_labels = weights["dense_1_kernel"].shape

    class BiLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(vocab, dim)
            self.lstm = nn.LSTM(dim, units, batch_first=True, bidirectional=True)
            self.dense = nn.Linear(2 * units, hidden)
            self.out = nn.Linear(hidden, n_labels)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (batch, maxlen) -> (batch, labels)
            states, _ = self.lstm(self.embedding(ids))
            pooled = states.max(dim=1).values
            return torch.sigmoid(self.out(torch.relu(self.dense(pooled))))

    model = BiLSTM()
    t = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in weights.items()}
    with torch.no_grad():
        model.embedding.weight.copy_(t["embedding"])
        for side, suffix in (("forward", ""), ("backward", "_reverse")):
            getattr(model.lstm, f"weight_ih_l0{suffix}").copy_(t[f"{side}_kernel"].T)
            getattr(model.lstm, f"weight_hh_l0{suffix}").copy_(t[f"{side}_recurrent"].T)
            getattr(model.lstm, f"bias_ih_l0{suffix}").copy_(t[f"{side}_bias"])
            getattr(model.lstm, f"bias_hh_l0{suffix}").zero_()
        model.dense.weight.copy_(t["dense_kernel"].T)
        model.dense.bias.copy_(t["dense_bias"])
        model.out.weight.copy_(t["dense_1_kernel"].T)
        model.out.bias.copy_(t["dense_1_bias"])
    return model.eval()


_JIGSAW_H5_KEYS = {
    "embedding": "layers/embedding/vars/0",
    "forward_kernel": "layers/bidirectional/forward_layer/cell/vars/0",
    "forward_recurrent": "layers/bidirectional/forward_layer/cell/vars/1",
    "forward_bias": "layers/bidirectional/forward_layer/cell/vars/2",
    "backward_kernel": "layers/bidirectional/backward_layer/cell/vars/0",
    "backward_recurrent": "layers/bidirectional/backward_layer/cell/vars/1",
    "backward_bias": "layers/bidirectional/backward_layer/cell/vars/2",
    "dense_kernel": "layers/dense/vars/0",
    "dense_bias": "layers/dense/vars/1",
    "dense_1_kernel": "layers/dense_1/vars/0",
    "dense_1_bias": "layers/dense_1/vars/1",
}


def _jigsaw_model_dir(model_dir: str | Path | None) -> Path:
    """The folder with ``model.weights.h5`` and ``tokenizer.pickle``; InputError if absent."""
    if model_dir is None:
        spec = importlib.util.find_spec("toxic_classifier")
        if spec is None or not spec.submodule_search_locations:
            raise InputError(
                "toxicity scorer 'jigsaw_bilstm' needs the toxic-comment-classifier wheel: "
                "pip install --no-deps toxic-comment-classifier==0.3.0 h5py "
                "(its declared TensorFlow dependency is not needed)"
            )
        model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    model_dir = Path(model_dir)
    for name in ("model.weights.h5", "tokenizer.pickle"):
        if not (model_dir / name).is_file():
            raise InputError(
                f"jigsaw_bilstm: {model_dir / name} not found "
                "(config key scoring.scorer_options.model_dir)"
            )
    return model_dir


def _read_jigsaw_weights(path: Path) -> dict[str, np.ndarray]:
    """The layer weights of the Keras weights file, checked against the architecture."""
    try:
        import h5py
    except ImportError as exc:
        raise InputError("toxicity scorer 'jigsaw_bilstm' needs h5py: pip install h5py") from exc
    try:
        with h5py.File(path, "r") as fh:
            weights = {k: np.asarray(fh[v]) for k, v in _JIGSAW_H5_KEYS.items()}
    except (OSError, KeyError) as exc:
        raise InputError(f"{path}: not the Jigsaw BiLSTM's Keras weights file ({exc})") from exc
    units = weights["forward_recurrent"].shape[0]
    dim = weights["embedding"].shape[1]
    expected = {"forward_kernel": (dim, 4 * units), "backward_kernel": (dim, 4 * units)}
    expected["dense_kernel"] = (2 * units, weights["dense_bias"].shape[0])
    expected["dense_1_kernel"] = (weights["dense_bias"].shape[0], len(JIGSAW_LABELS))
    for key, shape in expected.items():
        if weights[key].shape != shape:
            raise InputError(f"{path}: {key} has shape {weights[key].shape}, expected {shape}")
    return weights


@register_scorer("jigsaw_bilstm")
class JigsawBiLSTMScorer(ToxicityScorer):
    """A bidirectional LSTM trained on the Jigsaw Toxic Comment data (``toxic`` probability).

    A learned sequence model (word embeddings, a 50-unit BiLSTM read over the
    last 100 words, max-pooling, two dense layers; six sigmoid outputs,
    :data:`JIGSAW_LABELS`), unlike the TF-IDF ``profanity_check``: the second
    opinion on what counts as toxic. The weights and the word index ship in
    the MIT-licensed ``toxic-comment-classifier`` wheel (0.3.0, 8 MB); they
    are read with ``h5py`` and run in torch, so its TensorFlow dependency is
    not needed (install it with ``--no-deps``). ``label`` picks the output;
    ``model_dir`` a folder with the wheel's ``model.weights.h5`` and
    ``tokenizer.pickle`` (None: the installed wheel's). The tokenizer pickle
    is read by a loader that admits only the Keras tokenizer's plain data.

    Identity words alone score high ("I am a gay person." 0.85): audit it
    (:mod:`compfair.audit`) before trusting group comparisons.
    """

    def __init__(
        self, label: str = "toxic", batch_size: int = 128, model_dir: str | Path | None = None
    ) -> None:
        if label not in JIGSAW_LABELS:
            raise InputError(
                f"jigsaw_bilstm: label must be one of {', '.join(JIGSAW_LABELS)}, got {label!r}"
            )
        folder = _jigsaw_model_dir(model_dir)
        self.label_index = JIGSAW_LABELS.index(label)
        self.batch_size = int(batch_size)
        try:
            with open(folder / "tokenizer.pickle", "rb") as fh:
                self.tokenizer = _TokenizerUnpickler(fh).load()
        except (pickle.UnpicklingError, EOFError, AttributeError) as exc:
            raise InputError(
                f"{folder / 'tokenizer.pickle'}: not a Keras tokenizer ({exc})"
            ) from exc
        if not isinstance(getattr(self.tokenizer, "word_index", None), dict):
            raise InputError(f"{folder / 'tokenizer.pickle'}: no word index")
        self.model = _bilstm_module(_read_jigsaw_weights(folder / "model.weights.h5"))

    def token_ids(self, texts: list[str]) -> np.ndarray:
        """Word ids, int64 ``(len(texts), JIGSAW_MAXLEN)``: left-padded with 0, first words cut."""
        out = np.zeros((len(texts), JIGSAW_MAXLEN), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = _keras_word_ids(str(text), self.tokenizer)[-JIGSAW_MAXLEN:]
            if ids:
                out[row, JIGSAW_MAXLEN - len(ids) :] = ids
        return out

    def score(self, texts: list[str]) -> np.ndarray:
        import torch

        texts = [str(t) for t in texts]
        parts = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                ids = torch.from_numpy(self.token_ids(texts[i : i + self.batch_size]))
                parts.append(self.model(ids)[:, self.label_index].double().numpy())
        probs = np.concatenate(parts) if parts else np.zeros(0)
        return check_probs(probs, len(texts), self.name)
