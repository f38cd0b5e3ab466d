"""Quality-matched controls: a generic degradation tuned to a model's loss of quality.

A compressed model that writes worse text also writes less toxic text. To say
what a method does *beyond* the quality it cost, a study compares the model
with a **matched control**: the model's parent degraded by a method that is
not under study (Gaussian weight noise, random pruning), at the strength that
gives the control the same held-out perplexity ratio to the parent as the
model. :func:`make_matched_control` searches that strength
(:func:`compfair.compression.matching.match_strength`), measuring each try's
held-out perplexity exactly as the evaluation job does
(:func:`compfair.perplexity.perplexity` on the same tokens, windows and batch
size), and saves the control at the strength found like any compressed
model, with every try in its ``compression.json``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from compfair.compression import Context, get_method
from compfair.compression.matching import MatchResult, match_strength
from compfair.compression.run import save_verified
from compfair.io import InputError, PathLike, provenance
from compfair.models import count_parameters, load_model, read_provenance
from compfair.perplexity import load_token_stream, perplexity

log = logging.getLogger(__name__)


def perplexity_of(path: PathLike) -> float:
    """The held-out perplexity in an evaluation JSON (``eval/...json``)."""
    try:
        value = json.loads(Path(path).read_text())["perplexity"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: no held-out perplexity ({exc})") from exc
    return float(value)


def search_control(
    parent: Any,
    kind: str,
    target: float,
    tokens: torch.Tensor,
    evaluation: Mapping[str, Any],
    search: Mapping[str, Any],
) -> tuple[MatchResult, float]:
    """Search the strength at which ``kind`` gives ``parent`` a perplexity ratio of ``target``
    to its undegraded self; returns the search and the parent's own perplexity, and leaves
    ``parent`` with its original weights.

    ``evaluation``: ``seq_len``, ``max_tokens``, ``batch_size`` of the held-out
    evaluation; ``search``: ``seed``, ``tolerance``, ``max_tries``, ``bounds``
    (low, high). Each try starts from the parent's original weights.
    """
    method = get_method(kind)
    original = {k: v.detach().clone() for k, v in parent.state_dict().items()}

    def ppl() -> float:
        return perplexity(
            parent,
            tokens,
            int(evaluation["seq_len"]),
            evaluation.get("max_tokens"),
            int(evaluation["batch_size"]),
        )

    base = ppl()

    def ratio_at(strength: float) -> float:
        parent.load_state_dict(original)
        method.apply(parent, strength, method.defaults(), Context(seed=int(search["seed"])))
        ratio = ppl() / base
        log.info("%s at %.5g: perplexity ratio %.4g (target %.4g)", kind, strength, ratio, target)
        return ratio

    low, high = search["bounds"]
    with torch.no_grad():
        found = match_strength(
            ratio_at,
            target,
            float(low),
            float(high),
            float(search["tolerance"]),
            int(search["max_tries"]),
            method.degradation_power,
        )
        parent.load_state_dict(original)  # the caller degrades it once more, at the strength found
    return found, base


def make_matched_control(
    parent_dir: PathLike,
    out_dir: PathLike,
    kind: str,
    model_eval: PathLike,
    parent_eval: PathLike,
    heldout_tokens: PathLike,
    evaluation: Mapping[str, Any],
    search: Mapping[str, Any],
    variant: str,
    matches: str,
) -> dict[str, Any]:
    """Make ``variant``: ``parent_dir`` degraded by ``kind`` to the quality of ``matches``.

    The target is the perplexity ratio of ``model_eval`` to ``parent_eval``
    (the evaluation job's files of the model and its parent). A target the
    bounds cannot reach raises ``ValueError`` naming the model. The saved
    folder's ``compression.json`` holds the method's report at the strength
    found, ``matches``, the target and reached ratios and every try.
    """
    parent_ppl = perplexity_of(parent_eval)
    target = perplexity_of(model_eval) / parent_ppl
    model, tokenizer = load_model(parent_dir)
    tokens = load_token_stream(Path(heldout_tokens))
    try:
        found, base = search_control(model, kind, target, tokens, evaluation, search)
    except ValueError as exc:
        raise ValueError(f"matched control {variant} of {matches}: {exc}") from exc
    if not math.isclose(base, parent_ppl, rel_tol=1e-6):
        log.warning(
            "the parent's perplexity here (%.6g) differs from its evaluation (%.6g)",
            base,
            parent_ppl,
        )
    method = get_method(kind)
    with torch.no_grad():
        report = method.apply(
            model, found.strength, method.defaults(), Context(int(search["seed"]))
        )
    report = {
        **report,
        "matches": matches,
        "target_ratio": target,
        "ratio": found.ratio,
        "strength": found.strength,
        "tries": [list(t) for t in found.tries],
    }
    prov = provenance(
        step="match_control",
        variant=variant,
        method=kind,
        summary=method.summary,
        level=found.strength,
        options=method.defaults(),
        seed=int(search["seed"]),
        parent=str(parent_dir),
        parent_provenance=read_provenance(parent_dir),
        n_parameters=count_parameters(model),
        matches=matches,
    )
    log.info(
        "%s: %s at %.5g gives ratio %.4g for %s's %.4g (%d tries)",
        *(variant, kind, found.strength, found.ratio, matches, target, len(found.tries)),
    )
    return save_verified(model, tokenizer, method, found.strength, report, prov, out_dir)


__all__ = ["make_matched_control", "perplexity_of", "search_control"]
