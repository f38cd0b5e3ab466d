"""Knowledge distillation of the teacher into a half-depth student (the DistilGPT2 recipe).

The student is the teacher with every other decoder block removed: it starts
from the teacher's embeddings, final norm, LM head and blocks 0, 2, 4, ...,
and is trained on a mix of the temperature-softened KL divergence to the
teacher's next-token distribution and the ordinary LM loss.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, PreTrainedModel

from compfair import io
from compfair.io import PathLike
from compfair.models import (
    blocks_prefix,
    count_parameters,
    decoder_blocks,
    load_model,
    read_provenance,
    save_model,
)
from compfair.training import TrainConfig, load_tokens, train

log = logging.getLogger(__name__)


def _set_num_layers(config, n: int) -> None:
    if config.model_type == "gpt2":
        config.n_layer = n
    else:
        config.num_hidden_layers = n
    # Per-layer lists (transformers 5 Llama has ``layer_types``) must shrink too.
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) != n:
        config.layer_types = layer_types[:n]


def init_student_from_teacher(teacher: PreTrainedModel, stride: int = 2) -> PreTrainedModel:
    """A student with the teacher's blocks ``0, stride, 2*stride, ...`` and everything else.

    The student config is the teacher's with ``ceil(n_layers / stride)`` layers
    (15 for a 30-layer teacher at stride 2); its embeddings, final norm, LM head
    and block ``i`` are copies of the teacher's and of teacher block
    ``stride * i``. Works for GPT-2 and Llama. The teacher is not modified.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    n_teacher = len(decoder_blocks(teacher))
    keep = list(range(0, n_teacher, stride))
    config = copy.deepcopy(teacher.config)
    _set_num_layers(config, len(keep))
    student = AutoModelForCausalLM.from_config(config, dtype=torch.float32)

    # Rename teacher block keep[i] -> student block i; everything outside the
    # blocks (embeddings, positions, final norm, head) is copied as is.
    prefix = re.escape(blocks_prefix(teacher))
    pattern = re.compile(rf"^({prefix})\.(\d+)\.(.*)$")
    source_of = {t: s for s, t in enumerate(keep)}
    state = {}
    for name, tensor in teacher.state_dict().items():
        match = pattern.match(name)
        if match is None:
            state[name] = tensor.detach().clone()
        elif int(match.group(2)) in source_of:
            state[f"{match.group(1)}.{source_of[int(match.group(2))]}.{match.group(3)}"] = (
                tensor.detach().clone()
            )
    student.load_state_dict(state, strict=True)
    student.tie_weights()
    log.info(
        "student: %d of %d teacher blocks (%s), %d parameters",
        len(keep), n_teacher, keep, count_parameters(student),
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


def distill(
    teacher_dir: PathLike,
    train_tokens_path: PathLike,
    out_dir: PathLike,
    cfg: TrainConfig,
    temperature: float,
    alpha_kd: float,
    alpha_lm: float,
    checkpoint_dir: PathLike,
) -> None:
    """Distil the teacher folder into a half-depth student folder ``out_dir``.

    The student starts from :func:`init_student_from_teacher` and is trained by
    :func:`compfair.training.train` (checkpoints and resume in
    ``checkpoint_dir``) on :func:`distillation_loss` against the frozen teacher.
    ``out_dir`` gets the model, ``provenance.json`` and ``training_log.json``.
    """
    if temperature <= 0:
        raise io.InputError(f"distillation temperature must be > 0, got {temperature}")
    io.set_seed(cfg.seed)
    teacher, tokenizer = load_model(teacher_dir)
    teacher.requires_grad_(False)
    teacher.eval()
    student = init_student_from_teacher(teacher)
    tokens = load_tokens(train_tokens_path, teacher.config.vocab_size)

    def loss_fn(model: PreTrainedModel, batch: torch.Tensor) -> tuple[torch.Tensor, dict]:
        inputs, labels = batch[:, :-1], batch[:, 1:]  # [batch, seq_len] each
        with torch.no_grad():
            teacher_logits = teacher(input_ids=inputs).logits
        student_logits = model(input_ids=inputs).logits
        return distillation_loss(
            student_logits, teacher_logits, labels, temperature, alpha_kd, alpha_lm
        )

    run_info = {
        "step": "distill",
        "teacher": str(Path(teacher_dir).resolve()),
        "train_tokens": str(Path(train_tokens_path).resolve()),
        "n_tokens": tokens.numel(),
        "temperature": temperature,
        "alpha_kd": alpha_kd,
        "alpha_lm": alpha_lm,
    }
    log.info(
        "distilling %s (%d layers) into %d layers on %d tokens for %d steps",
        teacher_dir, len(decoder_blocks(teacher)), len(decoder_blocks(student)),
        tokens.numel(), cfg.steps,
    )
    history = train(student, tokens, cfg, checkpoint_dir, loss_fn, run_info=run_info)
    prov = io.provenance(
        step="distill",
        parent=str(teacher_dir),
        parent_provenance=read_provenance(teacher_dir),
        train_tokens=str(train_tokens_path),
        n_train_tokens=tokens.numel(),
        config=dataclasses.asdict(cfg),
        seed=cfg.seed,
        temperature=temperature,
        alpha_kd=alpha_kd,
        alpha_lm=alpha_lm,
        teacher_layers=len(decoder_blocks(teacher)),
        student_layers=len(decoder_blocks(student)),
        n_parameters=count_parameters(student),
        final_loss=history[-1]["loss"] if history else None,
    )
    save_model(student, tokenizer, out_dir, prov, extra_files={"training_log.json": history})
