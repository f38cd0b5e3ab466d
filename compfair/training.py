"""The causal-LM training loop shared by teacher fine-tuning and distillation.

One loop (nanoGPT style): AdamW, linear warmup then cosine decay, gradient
accumulation, clipping, and periodic checkpoints that a killed run resumes
from. A resumed run ends with exactly the weights of an uninterrupted one:
the checkpoint holds the weights, the optimizer state, the step, the batch
sampler's generator state and torch's global RNG state (dropout).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from compfair import io
from compfair.io import InputError, PathLike
from compfair.models import load_model, read_provenance, save_model

log = logging.getLogger(__name__)

#: ``loss_fn(model, batch) -> (loss, metrics)``; ``batch`` is ``[batch, seq_len + 1]`` token ids.
LossFn = Callable[[PreTrainedModel, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]

_CHECKPOINT = "last"  # sub-folder of checkpoint_dir holding the latest checkpoint


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (the ``teacher`` / ``student`` config slice).

    One optimizer step sees ``batch_size * grad_accum`` windows of ``seq_len`` tokens.
    """

    steps: int = 100
    batch_size: int = 8
    seq_len: int = 128
    lr: float = 5e-5
    warmup_steps: int = 10
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    grad_accum: int = 1
    checkpoint_every: int = 50
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "grad_accum", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"training config: {name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.lr <= 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise InputError(
                "training config: lr must be > 0 and warmup_steps, grad_clip, weight_decay >= 0"
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], seed: int) -> TrainConfig:
        """From a config slice (``teacher`` / ``student``); its distillation-only keys are skipped."""
        known = {f.name for f in dataclasses.fields(cls)} - {"seed"}
        return cls(**{k: v for k, v in settings.items() if k in known}, seed=int(seed))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a config mapping; an unknown key raises :class:`InputError` naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"training config: unknown key(s) {', '.join(unknown)}")
        return cls(**dict(values))


def remove_checkpoints(checkpoint_dir: PathLike) -> None:
    """Remove a finished run's resumable state (the model folder is the output)."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based).

    Linear warmup over ``warmup_steps`` to ``cfg.lr``, then cosine decay to
    10 % of ``cfg.lr`` at the last step.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_steps = max(1, cfg.steps - 1 - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    min_lr = 0.1 * cfg.lr
    return min_lr + 0.5 * (cfg.lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def sample_batch(
    tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> torch.Tensor:
    """Random windows of ``seq_len + 1`` consecutive tokens from a token stream.

    ``tokens``: ``[n_tokens]`` int64. Returns ``[batch_size, seq_len + 1]``;
    inputs are ``batch[:, :-1]``, next-token targets ``batch[:, 1:]``.
    """
    if tokens.dim() != 1:
        raise InputError(f"token stream must be 1-D, got shape {tuple(tokens.shape)}")
    need = seq_len + 1
    if tokens.numel() < need:
        raise InputError(f"corpus too small for one batch: {tokens.numel()} tokens, need {need}")
    starts = torch.randint(0, tokens.numel() - need + 1, (batch_size,), generator=generator)
    return tokens[starts[:, None] + torch.arange(need)]


def lm_loss(model: PreTrainedModel, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token cross-entropy of ``model`` on ``batch`` (``[batch, seq_len + 1]``)."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits = model(input_ids=inputs).logits  # [batch, seq_len, vocab]
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    return loss, {"lm_loss": loss.item()}


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    # Decay matrices only, not biases or norm gains (as nanoGPT and most LM recipes do).
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def _run_signature(cfg: TrainConfig, run_info: Mapping[str, Any] | None) -> dict[str, Any]:
    fields = dataclasses.asdict(cfg)
    fields.pop("log_every")  # logging cadence does not change the weights
    fields.pop("checkpoint_every")
    return {"config": fields, "run_info": dict(run_info or {})}


def _save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    generator: torch.Generator,
    history: list[dict[str, float]],
    signature: dict[str, Any],
) -> None:
    with io.atomic_dir(folder) as tmp:
        # safetensors' save_model drops the duplicate of tied weights.
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"))
        torch.save(
            {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": history,
            },
            tmp / "state.pt",
        )
        io.write_json(tmp / "run.json", signature)
    log.info("checkpoint at step %d -> %s", step, folder)


def _load_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    signature: dict[str, Any],
) -> tuple[int, list[dict[str, float]]] | None:
    """Restore a checkpoint into the live objects; return (step, history), or None
    when there is none or it belongs to a different run."""
    if not (folder / "state.pt").is_file():
        return None
    stored = io.read_json(folder / "run.json") if (folder / "run.json").is_file() else None
    if stored != signature:
        log.warning(
            "checkpoint %s was made by a different run (config or inputs differ): "
            "ignoring it and training from the start",
            folder,
        )
        return None
    safetensors.torch.load_model(model, str(folder / "model.safetensors"), strict=True)
    state = torch.load(folder / "state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), list(state["history"])


def train(
    model: PreTrainedModel,
    tokens: torch.Tensor,
    cfg: TrainConfig,
    checkpoint_dir: PathLike,
    loss_fn: LossFn = lm_loss,
    run_info: Mapping[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place on random windows of ``tokens`` (``[n_tokens]`` int64).

    Each optimizer step accumulates ``cfg.grad_accum`` micro-batches of
    ``[cfg.batch_size, cfg.seq_len + 1]`` tokens through ``loss_fn``, clips
    the gradient norm to ``cfg.grad_clip`` and steps AdamW at ``lr_at(step)``.
    Every ``cfg.checkpoint_every`` steps, and at the end, the full training
    state is written atomically to ``checkpoint_dir/last``; a later call with
    the same ``cfg`` and ``run_info`` resumes from it and ends with the same
    weights as an uninterrupted run. A checkpoint of a different run (another
    config or ``run_info``) is ignored with a warning.

    Returns one record a step: ``step`` (1-based), ``lr``, ``grad_norm``,
    ``loss`` and the metrics of ``loss_fn`` averaged over micro-batches.
    """
    folder = Path(checkpoint_dir) / _CHECKPOINT
    signature = _run_signature(cfg, run_info)
    if tokens.numel() < cfg.seq_len + 1:
        raise InputError(
            f"corpus too small for one batch: {tokens.numel()} tokens, need {cfg.seq_len + 1}"
        )
    io.set_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = _optimizer(model, cfg)
    start, history = 0, []
    resumed = _load_checkpoint(folder, model, optimizer, generator, signature)
    if resumed is not None:
        start, history = resumed
        log.info("resuming from %s at step %d of %d", folder, start, cfg.steps)
    model.train()
    progress = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train")
    for step in progress:
        record = _train_step(model, optimizer, tokens, cfg, step, generator, loss_fn)
        history.append(record)
        progress.set_postfix(loss=f"{record['loss']:.3f}")
        if (step + 1) % cfg.log_every == 0 or step == start:
            log.info(
                "step %d/%d loss %.4f lr %.2e", step + 1, cfg.steps, record["loss"], record["lr"]
            )
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            _save_checkpoint(folder, model, optimizer, step + 1, generator, history, signature)
    model.eval()
    return history


def _train_step(
    model: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    tokens: torch.Tensor,
    cfg: TrainConfig,
    step: int,
    generator: torch.Generator,
    loss_fn: LossFn,
) -> dict[str, float]:
    """One optimizer step over ``cfg.grad_accum`` micro-batches; its record for the history."""
    lr = lr_at(step, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    sums: dict[str, float] = {}
    for _ in range(cfg.grad_accum):
        batch = sample_batch(tokens, cfg.batch_size, cfg.seq_len, generator)
        loss, metrics = loss_fn(model, batch)
        (loss / cfg.grad_accum).backward()
        for key, value in {"loss": loss.item(), **metrics}.items():
            sums[key] = sums.get(key, 0.0) + float(value)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if cfg.grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    else:
        grad_norm = torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in params if p.grad is not None])
        )
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    record = {"step": step + 1, "lr": lr, "grad_norm": float(grad_norm)}
    record.update({k: v / cfg.grad_accum for k, v in sums.items()})
    return record


def load_tokens(path: PathLike, vocab_size: int | None = None) -> torch.Tensor:
    """The 1-D int64 ``input_ids`` tensor of a token file; checked against ``vocab_size``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: token file not found")
    try:
        tensors = safetensors.torch.load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{path}: not a readable safetensors file ({exc})") from exc
    if "input_ids" not in tensors:
        raise InputError(f"{path}: no tensor 'input_ids' (found {', '.join(tensors) or 'none'})")
    ids = tensors["input_ids"]
    if ids.dim() != 1 or ids.dtype not in (torch.int64, torch.int32):
        raise InputError(
            f"{path}: input_ids must be 1-D integers, got {ids.dtype} {tuple(ids.shape)}"
        )
    ids = ids.long()
    if ids.numel() and (ids.min() < 0 or (vocab_size is not None and ids.max() >= vocab_size)):
        raise InputError(
            f"{path}: token ids outside [0, {vocab_size}) - tokenised with another tokenizer?"
        )
    return ids


def finetune_teacher(
    base_dir: PathLike,
    train_tokens_path: PathLike,
    out_dir: PathLike,
    cfg: TrainConfig,
    checkpoint_dir: PathLike,
) -> None:
    """Fine-tune the base model with the LM loss and save it as the teacher folder.

    The folder holds the model, ``provenance.json`` (config, parent model) and
    ``training_log.json`` (one record a step, see :func:`train`).
    """
    model, tokenizer = load_model(base_dir)
    tokens = load_tokens(train_tokens_path, model.config.vocab_size)
    log.info("fine-tuning %s on %d tokens for %d steps", base_dir, tokens.numel(), cfg.steps)
    run_info = {
        "step": "finetune_teacher",
        "parent": str(Path(base_dir).resolve()),
        "train_tokens": str(Path(train_tokens_path).resolve()),
        "n_tokens": tokens.numel(),
    }
    history = train(model, tokens, cfg, checkpoint_dir, lm_loss, run_info=run_info)
    prov = io.provenance(
        step="finetune_teacher",
        parent=str(base_dir),
        parent_provenance=read_provenance(base_dir),
        train_tokens=str(train_tokens_path),
        n_train_tokens=tokens.numel(),
        config=dataclasses.asdict(cfg),
        seed=cfg.seed,
        final_loss=history[-1]["loss"] if history else None,
    )
    save_model(model, tokenizer, out_dir, prov, extra_files={"training_log.json": history})
