"""Tests for compfair.training: schedule, batching, the loop, checkpoints and resume."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from compfair.io import InputError
from compfair.training import (
    LossFn,
    TrainConfig,
    finetune_teacher,
    lm_loss,
    load_tokens,
    lr_at,
    sample_batch,
    train,
)


def _cfg(**overrides: float) -> TrainConfig:
    base = dict(
        steps=6,
        batch_size=2,
        seq_len=8,
        lr=1e-2,
        warmup_steps=2,
        weight_decay=0.1,
        grad_clip=1.0,
        grad_accum=2,
        checkpoint_every=2,
        seed=3,
        log_every=1,
    )
    base.update(overrides)
    return TrainConfig(**base)


def _stream(n: int = 400, vocab: int = 100, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))


def test_lr_schedule_warmup_then_cosine_to_ten_percent() -> None:
    cfg = _cfg(steps=13, warmup_steps=2, lr=1.0)
    lrs = [lr_at(s, cfg) for s in range(cfg.steps)]
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert lrs[2] == pytest.approx(1.0)  # first decay step starts at the peak
    assert lrs[-1] == pytest.approx(0.1)  # decays to 10 % at the last step
    assert lrs[7] == pytest.approx(0.55)  # half-way through the decay (steps 2..12): cos = 0
    assert lrs[4] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.2)))
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:], strict=False))
    assert lr_at(100, cfg) == pytest.approx(0.1)


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    assert TrainConfig.from_dict({"steps": 3}).steps == 3
    with pytest.raises(InputError, match="unknown key.*stepz"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(InputError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_sample_batch_windows() -> None:
    tokens = torch.arange(50)
    batch = sample_batch(tokens, 4, 9, torch.Generator().manual_seed(0))
    assert batch.shape == (4, 10) and batch.dtype == torch.int64
    # each row is a window of consecutive tokens of the stream
    assert torch.equal(batch - batch[:, :1], torch.arange(10).expand(4, 10))
    again = sample_batch(tokens, 4, 9, torch.Generator().manual_seed(0))
    assert torch.equal(batch, again)
    # a stream of exactly seq_len + 1 tokens has one window
    assert torch.equal(sample_batch(torch.arange(10), 2, 9, torch.Generator())[1], torch.arange(10))
    with pytest.raises(InputError, match="corpus too small for one batch: 9 tokens, need 10"):
        sample_batch(torch.arange(9), 2, 9, torch.Generator())


def test_train_lowers_the_loss(tmp_path: Path, gpt2_factory: Callable[..., nn.Module]) -> None:
    model = gpt2_factory()
    tokens = torch.arange(20).repeat(30)  # a periodic stream is easy to learn
    cfg = _cfg(steps=30, lr=3e-3, grad_accum=1, checkpoint_every=100, warmup_steps=3)
    history = train(model, tokens, cfg, tmp_path / "ckpt", lm_loss)
    assert [h["step"] for h in history] == list(range(1, 31))
    first = sum(h["loss"] for h in history[:3]) / 3
    last = sum(h["loss"] for h in history[-3:]) / 3
    assert first > math.log(100) - 0.5  # random init: about ln(vocab)
    assert last < first - 1.0
    assert history[0]["lr"] == pytest.approx(1e-3) and history[-1]["lr"] == pytest.approx(3e-4)
    assert not model.training


class Killed(Exception):
    pass


def _killing(after_calls: int) -> LossFn:
    """``lm_loss`` that raises :class:`Killed` on every call after ``after_calls``."""
    calls = {"n": 0}

    def loss_fn(model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise Killed
        return lm_loss(model, batch)

    return loss_fn


def test_resume_after_kill_gives_the_same_weights(
    tmp_path: Path, gpt2_factory: Callable[..., nn.Module]
) -> None:
    tokens = _stream()
    cfg = _cfg()  # 6 steps, 2 micro-batches a step, checkpoints at steps 2, 4, 6; dropout on

    straight = gpt2_factory(seed=7)
    history = train(straight, tokens, cfg, tmp_path / "a", lm_loss)

    interrupted = gpt2_factory(seed=7)
    # killed in step 4 (after 3 steps x 2 micro-batches + 1 call): last checkpoint is step 2
    with pytest.raises(Killed):
        train(interrupted, tokens, cfg, tmp_path / "b", _killing(7))
    state = torch.load(tmp_path / "b" / "last" / "state.pt", weights_only=True)
    assert state["step"] == 2
    restarted = gpt2_factory(seed=7)  # a fresh process starts from the same initial model
    resumed_history = train(restarted, tokens, cfg, tmp_path / "b", lm_loss)

    a, b = straight.state_dict(), restarted.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed_history == history
    # the run changed the weights at all
    key = "transformer.h.0.attn.c_attn.weight"
    assert not torch.equal(a[key], gpt2_factory(seed=7).state_dict()[key])
    # a finished run resumes to its end without training further
    again = gpt2_factory(seed=7)
    assert train(again, tokens, cfg, tmp_path / "b", lm_loss) == history
    assert all(torch.equal(a[k], again.state_dict()[k]) for k in a)


def test_checkpoint_of_another_config_is_ignored(
    tmp_path: Path, gpt2_factory: Callable[..., nn.Module]
) -> None:
    tokens = _stream()
    train(gpt2_factory(), tokens, _cfg(steps=2), tmp_path / "c", lm_loss)
    fresh = gpt2_factory()
    history = train(fresh, tokens, _cfg(steps=2, lr=5e-3), tmp_path / "c", lm_loss)
    assert len(history) == 2 and history[0]["lr"] == pytest.approx(2.5e-3)
    reference = gpt2_factory()
    train(reference, tokens, _cfg(steps=2, lr=5e-3), tmp_path / "d", lm_loss)
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in fresh.state_dict().items())


def test_train_rejects_tiny_corpus(tmp_path: Path, gpt2_factory: Callable[..., nn.Module]) -> None:
    with pytest.raises(InputError, match="corpus too small"):
        train(gpt2_factory(), torch.arange(5), _cfg(), tmp_path, lm_loss)


def _write_tokens(path: Path, ids: torch.Tensor) -> Path:
    safetensors.torch.save_file({"input_ids": ids}, str(path))
    return path


def test_load_tokens_checks(tmp_path: Path) -> None:
    good = _write_tokens(tmp_path / "ok.safetensors", torch.arange(10))
    assert torch.equal(load_tokens(good, vocab_size=10), torch.arange(10))
    with pytest.raises(InputError, match=r"outside \[0, 5\)"):
        load_tokens(good, vocab_size=5)
    safetensors.torch.save_file({"ids": torch.arange(3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(InputError, match="no tensor 'input_ids'"):
        load_tokens(tmp_path / "bad.safetensors")
    two_d = _write_tokens(tmp_path / "2d.safetensors", torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(InputError, match="1-D"):
        load_tokens(two_d)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.safetensors"):
        load_tokens(tmp_path / "junk.safetensors")


def test_finetune_teacher(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    tokens = _write_tokens(tmp_path / "train.safetensors", _stream(300, vocab=50257))
    cfg = _cfg(steps=3, grad_accum=1, checkpoint_every=2)
    out = tmp_path / "teacher"
    finetune_teacher(tiny_gpt2_dir, tokens, out, cfg, tmp_path / "ckpt")
    log = json.loads((out / "training_log.json").read_text())
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and r["lm_loss"] == r["loss"] for r in log)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["config"] == dataclasses.asdict(cfg)
    assert prov["parent"] == str(tiny_gpt2_dir)
    assert prov["parent_provenance"]["source"] == "tiny_gpt2"
    assert prov["n_train_tokens"] == 300
    teacher = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir)
    assert not torch.equal(
        teacher.transformer.h[0].mlp.c_fc.weight, base.transformer.h[0].mlp.c_fc.weight
    )
    assert (tmp_path / "ckpt" / "last" / "model.safetensors").is_file()
