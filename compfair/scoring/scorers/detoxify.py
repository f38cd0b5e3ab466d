"""``detoxify``: Detoxify's ``toxicity`` output (Hanu & Unitary team 2020), the paper's scorer."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from compfair.io import InputError
from compfair.scoring import ToxicityScorer, check_probs, register_scorer

#: Detoxify's model variants that this scorer offers (all English).
DETOXIFY_VARIANTS = ("original", "unbiased")


@register_scorer("detoxify")
class DetoxifyScorer(ToxicityScorer):
    """Detoxify's ``toxicity`` output, from one of :data:`DETOXIFY_VARIANTS`.

    ``variant`` ``original`` is BERT fine-tuned on the Jigsaw Toxic Comment
    data, ``unbiased`` RoBERTa on the Jigsaw Unintended Bias data. Detoxify
    downloads its checkpoint from GitHub releases when it loads, and the base
    model's config (``bert-base-uncased`` / ``roberta-base``) and tokenizer
    from the Hugging Face hub. On a machine without internet give
    ``checkpoint`` (the ``.ckpt`` file, downloaded elsewhere) and either
    ``huggingface_config_path`` (a folder with the base model's
    ``config.json`` and tokenizer files) or a Hugging Face cache holding the
    base model with ``HF_HUB_OFFLINE=1`` (detoxify 0.5 reads the base config
    by hub id even when given the folder). ``device`` None picks CUDA when
    available. The ``detoxify`` package is imported only here
    (``pip install detoxify``). A ``checkpoint`` is read by this scorer with
    ``torch.load(weights_only=True)`` and only its config and tensors are handed to the
    library, whose own loader would unpickle the file with ``weights_only=False`` (a
    tampered checkpoint could then run code): one that holds anything else is refused.
    """

    uses_gpu = True

    def __init__(
        self,
        variant: str = "original",
        batch_size: int = 64,
        device: str | None = None,
        checkpoint: str | Path | None = None,
        huggingface_config_path: str | Path | None = None,
    ) -> None:
        if variant not in DETOXIFY_VARIANTS:
            raise InputError(
                f"detoxify: variant must be one of {', '.join(DETOXIFY_VARIANTS)}, got {variant!r}"
            )
        detoxify = _import_detoxify()
        _check_local_files(checkpoint, huggingface_config_path)
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.variant, self.device, self.batch_size = variant, device, int(batch_size)
        self.model = _load_model(detoxify, variant, device, checkpoint, huggingface_config_path)

    def score(self, texts: list[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        parts: list[np.ndarray] = []
        for i in tqdm(
            range(0, len(texts), self.batch_size),
            desc="detoxify",
            unit="batch",
            disable=len(texts) <= self.batch_size,
        ):
            # A list input always gives a list per class, also for one text.
            out = self.model.predict(texts[i : i + self.batch_size])
            if "toxicity" not in out:
                raise RuntimeError(f"detoxify returned no 'toxicity' output ({sorted(out)})")
            parts.append(np.atleast_1d(np.asarray(out["toxicity"], dtype=float)))
        probs = np.concatenate(parts) if parts else np.zeros(0)
        return check_probs(probs, len(texts), self.name)


def _import_detoxify() -> ModuleType:
    """The ``detoxify`` package; InputError saying how to install it when it is missing."""
    try:
        import detoxify
    except ImportError as exc:
        raise InputError(
            "toxicity scorer 'detoxify' needs the detoxify package: pip install detoxify "
            "(it is not in the offline requirements)"
        ) from exc
    return detoxify


def _check_local_files(
    checkpoint: str | Path | None, huggingface_config_path: str | Path | None
) -> None:
    """InputError naming the config key for a given checkpoint or config folder that is absent."""
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise InputError(
            f"detoxify: checkpoint file not found: {checkpoint} "
            "(config key scoring.scorer_options.checkpoint)"
        )
    if huggingface_config_path is not None and not Path(huggingface_config_path).is_dir():
        raise InputError(
            f"detoxify: folder not found: {huggingface_config_path} "
            "(config key scoring.scorer_options.huggingface_config_path)"
        )


def _load_model(
    detoxify: ModuleType,
    variant: str,
    device: str,
    checkpoint: str | Path | None,
    huggingface_config_path: str | Path | None,
) -> Any:
    """``detoxify.Detoxify``; a failed download is an InputError saying how to work offline.

    A user's checkpoint is read here (:func:`_read_checkpoint`), never by the library, which
    unpickles it with ``weights_only=False``: a tampered file would run code."""
    urls = getattr(getattr(detoxify, "detoxify", None), "MODEL_URLS", {})
    resource = str(checkpoint) if checkpoint is not None else urls.get(variant, variant)
    config_path = None if huggingface_config_path is None else str(huggingface_config_path)
    try:
        if checkpoint is not None:
            return _from_checkpoint(detoxify, _read_checkpoint(checkpoint), device, config_path)
        return detoxify.Detoxify(
            model_type=variant, checkpoint=None, device=device, huggingface_config_path=config_path
        )
    except OSError as exc:  # URLError, hub connection and missing-file errors
        raise InputError(
            f"detoxify: cannot load the {variant!r} model: fetching {resource} (or its "
            f"tokenizer and config from the Hugging Face hub) failed: {exc}. Offline, "
            "download the checkpoint on a machine with internet and set "
            "scoring.scorer_options.checkpoint to the file (the base model's config and "
            "tokenizer must then be in the Hugging Face cache, used with HF_HUB_OFFLINE=1, "
            "or in a folder named by scoring.scorer_options.huggingface_config_path)"
        ) from exc


#: Detoxify's renaming of its training data's class names (as the library does).
_CLASS_NAMES = {
    "toxic": "toxicity",
    "identity_hate": "identity_attack",
    "severe_toxic": "severe_toxicity",
}


def _read_checkpoint(checkpoint: str | Path) -> dict[str, Any]:
    """A Detoxify checkpoint (``{"config": ..., "state_dict": ...}``) read with
    ``torch.load(weights_only=True)``: tensors and plain containers only, no code."""
    import torch

    key = "(config key scoring.scorer_options.checkpoint)"
    try:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for a refused type; others for a non-checkpoint
        raise InputError(
            f"detoxify: checkpoint {checkpoint} refused {key}: it holds more than tensors and "
            f"plain containers, which could run code when unpickled, or is not a checkpoint: {exc}"
        ) from exc
    if not isinstance(loaded, dict) or not {"config", "state_dict"} <= set(loaded):
        raise InputError(f"detoxify: checkpoint {checkpoint} has no config and state_dict {key}")
    return loaded


def _from_checkpoint(
    detoxify: ModuleType, loaded: dict[str, Any], device: str, config_path: str | None
) -> Any:
    """The library's ``Detoxify`` object, built from a checkpoint read by :func:`_read_checkpoint`
    (what ``Detoxify.__init__`` does after its own, unsafe, load)."""
    classes = [_CLASS_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
    model, tokenizer = detoxify.detoxify.get_model_and_tokenizer(
        **loaded["config"]["arch"]["args"],
        state_dict=loaded["state_dict"],
        huggingface_config_path=config_path,
    )
    scorer = detoxify.Detoxify.__new__(detoxify.Detoxify)
    scorer.model, scorer.tokenizer, scorer.class_names = model.to(device), tokenizer, classes
    scorer.device = device
    return scorer
