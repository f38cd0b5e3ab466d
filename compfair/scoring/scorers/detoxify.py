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
    (``pip install detoxify``).
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
    """``detoxify.Detoxify``; a failed download is an InputError saying how to work offline."""
    urls = getattr(getattr(detoxify, "detoxify", None), "MODEL_URLS", {})
    resource = str(checkpoint) if checkpoint is not None else urls.get(variant, variant)
    try:
        return detoxify.Detoxify(
            model_type=variant,
            checkpoint=None if checkpoint is None else str(checkpoint),
            device=device,
            huggingface_config_path=(
                None if huggingface_config_path is None else str(huggingface_config_path)
            ),
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
