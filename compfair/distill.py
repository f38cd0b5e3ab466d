"""Knowledge distillation of the teacher into a shallower student (the DistilGPT-2 recipe).

The student is the teacher with only some of its decoder blocks: it starts
from the teacher's embeddings, final norm, LM head and the blocks that
:func:`choose_student_layers` chooses (for a share of the blocks: spread
evenly, or the blocks of highest Block Influence, depth pruning's measure of
importance), and is trained on a mix of the
temperature-softened KL divergence to the teacher's next-token distribution
and the ordinary LM loss. The no-distillation control (``use_kd=False``)
starts from the same blocks and trains on the LM loss alone, with the same
steps and data, so that the effect of the soft targets can be told apart from
the effect of depth.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from compfair import io
from compfair.architecture import keep_blocks
from compfair.compression.run import calibration_windows
from compfair.compression.structured import block_similarities, lowest
from compfair.io import InputError, PathLike
from compfair.models import (
    count_parameters,
    decoder_blocks,
    load_model,
    read_provenance,
    save_model,
)
from compfair.training import TrainConfig, lm_loss, load_tokens, train
from compfair.variants import NAMED_LAYER_CHOICES

log = logging.getLogger(__name__)

#: How a share of the teacher's blocks is chosen (config key distillation.layer_selection).
LAYER_SELECTIONS = ("even", "block_influence")


def student_layers(n_teacher: int, keep: Any) -> list[int]:
    """The teacher blocks a student keeps, in order.

    ``keep`` is a share in (0, 1): ``k = round(share * n_teacher)`` blocks
    (at least one) spread evenly from the first to the last block, rounded
    half up (for GPT-2's 12 blocks and 0.5 this is DistilGPT-2's choice, 0, 2,
    4, 7, 9, 11); ``"every_other"``: blocks 0, 2, 4, ...; ``"distilgpt2"``:
    blocks 0, 2, 4, 7, 9, 11 (a 12-block teacher only); or a list of block
    indices. Raises :class:`InputError` for a choice this teacher cannot give.
    """
    if isinstance(keep, str):
        if keep == "every_other":
            return list(range(0, n_teacher, 2))
        fixed = NAMED_LAYER_CHOICES.get(keep)
        if fixed is None or max(fixed) >= n_teacher or (keep == "distilgpt2" and n_teacher != 12):
            raise InputError(
                f"layer choice {keep!r} needs a 12-block teacher, this one has {n_teacher}"
            )
        return list(fixed)
    if isinstance(keep, list):
        if any(i >= n_teacher for i in keep) or sorted(keep) != list(keep):
            raise InputError(f"layers {keep}: need increasing indices below {n_teacher}")
        return list(keep)
    k = max(1, round(float(keep) * n_teacher))
    if k == 1:
        return [0]
    return [int(math.floor(i * (n_teacher - 1) / (k - 1) + 0.5)) for i in range(k)]


def block_influence(model: PreTrainedModel, calibration: torch.Tensor) -> list[float]:
    """Each decoder block's Block Influence on ``calibration``, in block order.

    ``calibration``: ``[n_sequences, seq_len]`` token ids. The influence of a
    block is ``1 - cos(h_in, h_out)`` of the hidden states entering and leaving
    it, averaged over all calibration tokens (ShortGPT, Men et al. 2024; the
    measure the ``depth`` compression method removes the lowest of, from
    :func:`compfair.compression.structured.block_similarities`): 0 for a
    block that passes its input through unchanged. Measured in eval mode (no
    dropout), whatever mode ``model`` is in; its mode is restored.
    """
    training = model.training
    model.eval()
    try:
        cosine = block_similarities(model, calibration, 1)["cosine"]
    finally:
        model.train(training)
    return [float(s) for s in 1.0 - cosine]


def influential_layers(influence: Sequence[float], keep: float) -> list[int]:
    """The ``k = round(keep * n)`` blocks of highest ``influence``, in order, first and last included.

    ``influence`` has one score per teacher block (:func:`block_influence`).
    The ``n - k`` blocks dropped are those of lowest influence among blocks
    ``1 .. n - 2``; of equal scores the earlier block is dropped first, as
    depth pruning does. Raises :class:`InputError` unless ``2 <= k <= n``
    (fewer cannot hold both the first and the last block).
    """
    n = len(influence)
    k = round(float(keep) * n)
    if not 2 <= k <= n:
        raise InputError(
            f"layer_selection block_influence: round({keep} x {n} layers) = {k}; it keeps the "
            f"first and the last layer, so the share must keep 2 to {n} of them"
        )
    middle = torch.tensor(influence[1 : n - 1], dtype=torch.float64)
    dropped = {1 + i for i in lowest(middle, n - k)}
    return [i for i in range(n) if i not in dropped]


def _is_share(keep: Any) -> bool:
    return not isinstance(keep, str | list)


def choose_student_layers(
    teacher: PreTrainedModel,
    keep: Any,
    selection: str = "even",
    calibration: torch.Tensor | None = None,
) -> tuple[list[int], dict[str, Any]]:
    """``(the teacher blocks a student keeps, the record of how they were chosen)``.

    A share ``keep`` is chosen by ``selection``: ``"even"``
    (:func:`student_layers`) or ``"block_influence"``
    (:func:`influential_layers` of :func:`block_influence` on
    ``calibration``, ``[n_sequences, seq_len]`` ids, which it then requires).
    A named choice or a list is used as given (:func:`student_layers`),
    whatever ``selection`` says. The record has ``layer_selection`` (the rule
    applied: ``even``, ``block_influence`` or ``as_given``) and, for
    ``block_influence``, ``layer_influence`` (one score per teacher block).
    """
    if selection not in LAYER_SELECTIONS:
        raise InputError(f"layer_selection {selection!r}: not one of {', '.join(LAYER_SELECTIONS)}")
    n_teacher = len(decoder_blocks(teacher))
    if not _is_share(keep):
        if selection != "even":
            log.info("layer_selection %s applies to shares only: %s used as given", selection, keep)
        return student_layers(n_teacher, keep), {"layer_selection": "as_given"}
    if selection == "even":
        return student_layers(n_teacher, keep), {"layer_selection": "even"}
    if calibration is None:
        raise InputError("layer_selection block_influence needs calibration sequences")
    influence = block_influence(teacher, calibration)
    layers = influential_layers(influence, keep)
    log.info(
        "block influence per teacher layer: %s; keeping %s",
        ", ".join(f"{i}: {s:.4f}" for i, s in enumerate(influence)),
        layers,
    )
    return layers, {"layer_selection": "block_influence", "layer_influence": influence}


def init_student_from_teacher(teacher: PreTrainedModel, layers: Sequence[int]) -> PreTrainedModel:
    """A student with the teacher's blocks ``layers`` (in that order) and everything else.

    Its embeddings, final norm, LM head and block ``i`` are copies of the
    teacher's and of teacher block ``layers[i]``
    (:func:`compfair.architecture.keep_blocks`, any architecture). The teacher
    is not modified.
    """
    student = keep_blocks(teacher, layers)
    log.info(
        "student: %d of %d teacher blocks (%s), %d parameters",
        len(layers),
        len(decoder_blocks(teacher)),
        list(layers),
        count_parameters(student),
    )
    return student


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha_kd: float,
    alpha_lm: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Hinton-style distillation loss.

    ``student_logits``, ``teacher_logits``: ``[batch, seq, vocab]``;
    ``labels``: ``[batch, seq]``, the token each position should predict
    (already shifted; ``-100`` is ignored by the LM term).

    ``loss = alpha_kd * T^2 * KL(softmax(teacher / T) || softmax(student / T))
    + alpha_lm * CE(student, labels)``, where the KL is summed over the vocabulary
    and averaged over all ``batch * seq`` token positions, and the ``T^2`` keeps
    the gradient scale of the soft term independent of ``T``.
    Returns the loss and ``{"loss", "kd_loss", "lm_loss"}`` as floats.
    """
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(
            f"student and teacher vocabularies differ: {student_logits.shape[-1]} "
            f"vs {teacher_logits.shape[-1]}"
        )
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"logit shapes differ: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}"
        )
    if labels.shape != student_logits.shape[:-1]:
        raise ValueError(
            f"labels {tuple(labels.shape)} do not match logits {tuple(student_logits.shape)}"
        )
    vocab = student_logits.shape[-1]
    s = student_logits.reshape(-1, vocab).float()
    t = teacher_logits.reshape(-1, vocab).float()
    log_p_student = F.log_softmax(s / temperature, dim=-1)
    log_p_teacher = F.log_softmax(t / temperature, dim=-1)
    # batchmean over the flattened token positions = mean over tokens of the KL.
    kd = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    kd = kd * temperature**2
    lm = F.cross_entropy(s, labels.reshape(-1), ignore_index=-100)
    loss = alpha_kd * kd + alpha_lm * lm
    return loss, {"loss": loss.item(), "kd_loss": kd.item(), "lm_loss": lm.item()}


def hidden_cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
    """Mean over token positions of ``1 - cos(student, teacher)`` of the last hidden states.

    ``[batch, seq, hidden]`` each (the same width: the student is made of the
    teacher's blocks). DistilBERT's and DistilGPT-2's third loss term, which
    aligns the directions of the two models' hidden states.
    """
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"hidden shapes differ: {tuple(student_hidden.shape)} vs {tuple(teacher_hidden.shape)}"
        )
    cos = F.cosine_similarity(
        student_hidden.float(), teacher_hidden.float(), dim=-1
    )  # [batch, seq]
    return (1.0 - cos).mean()


def _kd_loss_fn(
    teacher: PreTrainedModel, temperature: float, alpha_kd: float, alpha_lm: float, alpha_cos: float
):
    def loss_fn(model: PreTrainedModel, batch: torch.Tensor) -> tuple[torch.Tensor, dict]:
        inputs, labels = batch[:, :-1], batch[:, 1:]  # [batch, seq_len] each
        hidden = alpha_cos > 0
        with torch.no_grad():
            teacher_out = teacher(input_ids=inputs, output_hidden_states=hidden)
        student_out = model(input_ids=inputs, output_hidden_states=hidden)
        loss, parts = distillation_loss(
            student_out.logits, teacher_out.logits, labels, temperature, alpha_kd, alpha_lm
        )
        if hidden:
            cos = hidden_cosine_loss(student_out.hidden_states[-1], teacher_out.hidden_states[-1])
            loss = loss + alpha_cos * cos
            parts = {**parts, "loss": loss.item(), "cos_loss": cos.item()}
        return loss, parts

    return loss_fn


def _run_info(
    layers: list[int],
    layer_selection: str,
    layer_calibration: Mapping[str, int] | None,
    n_tokens: int,
    use_kd: bool,
    temperature: float,
    alpha_kd: float,
    alpha_lm: float,
    alpha_cos: float,
) -> dict[str, Any]:
    """What identifies a student's training run (its checkpoints resume only the same run)."""
    return {
        "step": "distill" if use_kd else "train_student_without_kd",
        "layers": layers,
        "layer_selection": layer_selection,
        "layer_calibration": dict(layer_calibration) if layer_calibration else None,
        "n_tokens": n_tokens,
        "temperature": temperature if use_kd else None,
        "alpha_kd": alpha_kd if use_kd else 0.0,
        "alpha_lm": alpha_lm if use_kd else 1.0,
        "alpha_cos": alpha_cos if use_kd else 0.0,
    }


def _calibration_ids(
    tokens: torch.Tensor,
    keep: Any,
    selection: str,
    calibration: Mapping[str, int] | None,
    seed: int,
) -> torch.Tensor | None:
    """The ``[n_sequences, seq_len]`` windows of ``tokens`` block influence is measured on.

    ``None`` unless ``selection`` is ``block_influence`` and ``keep`` a share;
    then ``calibration`` (``n_sequences``, ``seq_len``) is required and the
    windows are drawn with ``seed`` as the compression methods draw theirs.
    """
    if selection != "block_influence" or not _is_share(keep):
        return None
    if not calibration:
        raise InputError(
            "layer_selection block_influence needs calibration settings (n_sequences, seq_len)"
        )
    n_sequences, seq_len = int(calibration["n_sequences"]), int(calibration["seq_len"])
    return calibration_windows(tokens, n_sequences, seq_len, seed)


def distill(
    teacher_dir: PathLike,
    train_tokens_path: PathLike,
    out_dir: PathLike,
    cfg: TrainConfig,
    temperature: float,
    alpha_kd: float,
    alpha_lm: float,
    checkpoint_dir: PathLike,
    keep: Any = 0.5,
    use_kd: bool = True,
    alpha_cos: float = 0.0,
    layer_selection: str = "even",
    calibration: Mapping[str, int] | None = None,
) -> None:
    """Train a student of the teacher folder's blocks ``keep`` into the folder ``out_dir``.

    The student starts from :func:`init_student_from_teacher` with the blocks
    :func:`choose_student_layers` picks by ``layer_selection``
    (``block_influence`` measures on ``calibration`` windows, ``n_sequences``
    of ``seq_len`` tokens, drawn from the training tokens with ``cfg.seed``)
    and is trained by :func:`compfair.training.train` (checkpoints and resume
    in ``checkpoint_dir``): on :func:`distillation_loss` against the frozen
    teacher (plus ``alpha_cos`` times :func:`hidden_cosine_loss` when it is
    above 0), or with ``use_kd=False`` (the control) on the LM loss alone,
    without running the teacher. ``out_dir`` gets the model,
    ``provenance.json`` (with the layers kept, the rule that chose them and,
    for ``block_influence``, each teacher layer's influence) and
    ``training_log.json``.
    """
    if temperature <= 0:
        raise InputError(f"distillation temperature must be > 0, got {temperature}")
    io.set_seed(cfg.seed)
    teacher, tokenizer = load_model(teacher_dir)
    teacher.requires_grad_(False)
    teacher.eval()
    tokens = load_tokens(train_tokens_path, teacher.config.vocab_size)
    ids = _calibration_ids(tokens, keep, layer_selection, calibration, cfg.seed)
    layers, choice = choose_student_layers(teacher, keep, layer_selection, ids)
    student = init_student_from_teacher(teacher, layers)
    loss_fn = (
        _kd_loss_fn(teacher, temperature, alpha_kd, alpha_lm, alpha_cos) if use_kd else lm_loss
    )
    run_info = _run_info(
        layers,
        choice["layer_selection"],
        calibration if ids is not None else None,
        tokens.numel(),
        use_kd,
        temperature,
        alpha_kd,
        alpha_lm,
        alpha_cos,
    )
    log.info(
        "training a %d-block student of %s (%d blocks) %s on %d tokens for %d steps",
        len(layers),
        teacher_dir,
        len(decoder_blocks(teacher)),
        "with the teacher's soft targets" if use_kd else "on the LM loss alone (no-KD control)",
        tokens.numel(),
        cfg.steps,
    )
    history = train(student, tokens, cfg, checkpoint_dir, loss_fn, run_info=run_info)
    prov = io.provenance(
        **run_info,
        # in the record, not in run_info: a resumed run re-measures it, maybe a few ulps apart
        layer_influence=choice.get("layer_influence"),
        parent=str(teacher_dir),
        parent_provenance=read_provenance(teacher_dir),
        train_tokens=str(train_tokens_path),
        config=dataclasses.asdict(cfg),
        seed=cfg.seed,
        teacher_layers=len(decoder_blocks(teacher)),
        student_layers=len(layers),
        n_parameters=count_parameters(student),
        final_loss=history[-1]["loss"] if history else None,
    )
    save_model(student, tokenizer, out_dir, prov, extra_files={"training_log.json": history})
