"""Tests for compfair.distill: student initialisation, the loss, the end-to-end run."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from compfair.distill import (
    distill,
    distillation_loss,
    hidden_cosine_loss,
    init_student_from_teacher,
    student_layers,
)
from compfair.io import InputError
from compfair.models import decoder_blocks
from compfair.training import TrainConfig

Factory = Callable[..., nn.Module]


def _assert_same(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _first_matrix(block: nn.Module) -> torch.Tensor:
    return next(p for p in block.parameters() if p.dim() == 2).detach()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_student_copies_every_other_teacher_block(
    arch: str, gpt2_factory: Factory, llama_factory: Factory
) -> None:
    teacher = gpt2_factory(seed=1) if arch == "gpt2" else llama_factory(seed=1)
    student = init_student_from_teacher(teacher, student_layers(4, "every_other"))
    t_blocks, s_blocks = decoder_blocks(teacher), decoder_blocks(student)
    assert len(t_blocks) == 4 and len(s_blocks) == 2
    layers_key = "n_layer" if arch == "gpt2" else "num_hidden_layers"
    assert getattr(student.config, layers_key) == 2 and getattr(teacher.config, layers_key) == 4
    for i, block in enumerate(s_blocks):
        _assert_same(block, t_blocks[2 * i])
    # block 1 is teacher block 2, not teacher block 1
    assert not torch.equal(_first_matrix(s_blocks[1]), _first_matrix(t_blocks[1]))
    if arch == "gpt2":
        for name in ("wte", "wpe", "ln_f"):
            _assert_same(getattr(student.transformer, name), getattr(teacher.transformer, name))
        assert student.lm_head.weight is student.transformer.wte.weight  # still tied
    else:
        _assert_same(student.model.embed_tokens, teacher.model.embed_tokens)
        _assert_same(student.model.norm, teacher.model.norm)
        _assert_same(student.lm_head, teacher.lm_head)
        # KV-cache slots must follow the student's own numbering
        assert [b.self_attn.layer_idx for b in s_blocks] == [0, 1]
    # copies, not shared tensors: training the student leaves the teacher alone
    before = _first_matrix(t_blocks[0]).clone()
    with torch.no_grad():
        for p in s_blocks[0].parameters():
            p.add_(1.0)
    assert torch.equal(_first_matrix(t_blocks[0]), before)


def test_student_of_odd_depth_and_generation(llama_factory: Factory) -> None:
    teacher = llama_factory(n_layer=5)
    student = init_student_from_teacher(teacher, student_layers(5, 0.6))
    assert len(decoder_blocks(student)) == 3  # blocks 0, 2, 4
    _assert_same(decoder_blocks(student)[2], decoder_blocks(teacher)[4])
    out = student.generate(
        torch.tensor([[3, 4, 5]]), max_new_tokens=4, do_sample=False, pad_token_id=0
    )
    assert out.shape == (1, 7)


def test_distillation_loss_matches_hand_computation() -> None:
    student = [[[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]]]  # [batch 1, seq 2, vocab 3]
    teacher = [[[2.0, 1.0, 0.0], [0.0, 1.0, 0.0]]]
    labels = [[0, 2]]
    T, a_kd, a_lm = 2.0, 0.7, 0.3

    def softmax(row: list[float], t: float) -> list[float]:
        exps = [math.exp(x / t) for x in row]
        return [e / sum(exps) for e in exps]

    kls, ces = [], []
    for s_row, t_row, y in zip(student[0], teacher[0], labels[0], strict=True):
        p_t, p_s = softmax(t_row, T), softmax(s_row, T)
        kls.append(sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s, strict=True)))
        ces.append(-math.log(softmax(s_row, 1.0)[y]))
    kd = T**2 * sum(kls) / len(kls)
    lm = sum(ces) / len(ces)
    expected = a_kd * kd + a_lm * lm

    loss, parts = distillation_loss(
        torch.tensor(student), torch.tensor(teacher), torch.tensor(labels), T, a_kd, a_lm
    )
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert parts["kd_loss"] == pytest.approx(kd, rel=1e-6)
    assert parts["lm_loss"] == pytest.approx(lm, rel=1e-6)
    assert parts["loss"] == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_properties() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 11, generator=gen, requires_grad=True)
    labels = torch.randint(0, 11, (2, 5), generator=gen)
    loss, parts = distillation_loss(logits, logits.detach(), labels, 3.0, 1.0, 0.0)
    assert parts["kd_loss"] == pytest.approx(0.0, abs=1e-6)
    loss, parts = distillation_loss(logits, torch.zeros(2, 5, 11), labels, 1.0, 0.0, 1.0)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1))
    assert loss.item() == pytest.approx(ce.item(), rel=1e-6)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="vocabularies differ: 11 vs 12"):
        distillation_loss(logits, torch.zeros(2, 5, 12), labels, 1.0, 1.0, 1.0)


def test_distill_end_to_end(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    ids = torch.randint(0, 50257, (300,), generator=torch.Generator().manual_seed(0))
    safetensors.torch.save_file({"input_ids": ids}, str(tmp_path / "train.safetensors"))
    cfg = TrainConfig(
        steps=3, batch_size=2, seq_len=8, lr=1e-3, warmup_steps=1, checkpoint_every=2, seed=0
    )
    out = tmp_path / "student"
    teacher_before = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir)
    distill(
        tiny_gpt2_dir,
        tmp_path / "train.safetensors",
        out,
        cfg,
        temperature=2.0,
        alpha_kd=0.5,
        alpha_lm=0.5,
        checkpoint_dir=tmp_path / "ckpt",
    )
    student = AutoModelForCausalLM.from_pretrained(out)
    assert student.config.n_layer == 2
    log = json.loads((out / "training_log.json").read_text())
    assert len(log) == 3
    for record in log:
        assert record["loss"] == pytest.approx(
            0.5 * record["kd_loss"] + 0.5 * record["lm_loss"], rel=1e-5
        )
        assert record["kd_loss"] > 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["teacher_layers"] == 4 and prov["student_layers"] == 2
    assert prov["layers"] == [0, 3]  # half of 4 blocks, spread from the first to the last
    assert prov["temperature"] == 2.0 and prov["parent"] == str(tiny_gpt2_dir)
    # the teacher folder is untouched and the student moved away from its initialisation
    _assert_same(AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir), teacher_before)
    init = init_student_from_teacher(teacher_before, [0, 3])
    assert not torch.equal(
        student.transformer.h[1].mlp.c_fc.weight, init.transformer.h[1].mlp.c_fc.weight
    )


@pytest.mark.parametrize(
    "n, keep, expected",
    [
        (12, 0.5, [0, 2, 4, 7, 9, 11]),  # DistilGPT-2's choice, from the share
        (12, "distilgpt2", [0, 2, 4, 7, 9, 11]),
        (30, "every_other", list(range(0, 30, 2))),
        (30, 0.5, [0, 2, 4, 6, 8, 10, 12, 15, 17, 19, 21, 23, 25, 27, 29]),
        (4, 0.25, [0]),
        (6, [1, 5], [1, 5]),
    ],
)
def test_student_layers(n: int, keep: object, expected: list[int]) -> None:
    assert student_layers(n, keep) == expected


@pytest.mark.parametrize("n, keep", [(30, "distilgpt2"), (4, [0, 4]), (4, [2, 1])])
def test_student_layers_refuses_what_the_teacher_cannot_give(n: int, keep: object) -> None:
    with pytest.raises(InputError):
        student_layers(n, keep)


def test_no_kd_control_trains_on_the_lm_loss_alone(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """The control's loss has no KL term: each step's loss is exactly the LM loss."""
    ids = torch.randint(0, 50257, (300,), generator=torch.Generator().manual_seed(0))
    safetensors.torch.save_file({"input_ids": ids}, str(tmp_path / "train.safetensors"))
    cfg = TrainConfig(
        steps=2, batch_size=2, seq_len=8, lr=1e-3, warmup_steps=1, checkpoint_every=2, seed=0
    )
    kwargs = {"temperature": 2.0, "alpha_kd": 0.5, "alpha_lm": 0.5, "keep": 0.5}
    distill(
        tiny_gpt2_dir,
        tmp_path / "train.safetensors",
        tmp_path / "nokd",
        cfg,
        checkpoint_dir=tmp_path / "c1",
        use_kd=False,
        **kwargs,
    )
    distill(
        tiny_gpt2_dir,
        tmp_path / "train.safetensors",
        tmp_path / "kd",
        cfg,
        checkpoint_dir=tmp_path / "c2",
        use_kd=True,
        **kwargs,
    )
    nokd = json.loads((tmp_path / "nokd" / "training_log.json").read_text())
    kd = json.loads((tmp_path / "kd" / "training_log.json").read_text())
    assert all("kd_loss" not in r and r["loss"] == pytest.approx(r["lm_loss"]) for r in nokd)
    # the same initialisation and first batch: the first LM losses agree, the totals do not
    assert nokd[0]["lm_loss"] == pytest.approx(kd[0]["lm_loss"], rel=1e-6)
    assert kd[0]["loss"] != pytest.approx(nokd[0]["loss"])
    prov = json.loads((tmp_path / "nokd" / "provenance.json").read_text())
    assert prov["alpha_kd"] == 0.0 and prov["temperature"] is None


def test_hidden_cosine_loss_by_hand() -> None:
    s = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # [batch 1, seq 2, hidden 2]
    t = torch.tensor([[[0.0, 2.0], [2.0, 2.0]]])  # orthogonal (cos 0), parallel (cos 1)
    assert hidden_cosine_loss(s, t).item() == pytest.approx(((1 - 0) + (1 - 1)) / 2)
    with pytest.raises(ValueError, match="hidden shapes differ"):
        hidden_cosine_loss(s, t[:, :1])


def test_cosine_term_joins_the_loss_when_switched_on(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    ids = torch.randint(0, 50257, (300,), generator=torch.Generator().manual_seed(0))
    safetensors.torch.save_file({"input_ids": ids}, str(tmp_path / "train.safetensors"))
    cfg = TrainConfig(
        steps=2, batch_size=2, seq_len=8, lr=1e-3, warmup_steps=1, checkpoint_every=2, seed=0
    )
    distill(
        tiny_gpt2_dir,
        tmp_path / "train.safetensors",
        tmp_path / "s",
        cfg,
        temperature=2.0,
        alpha_kd=0.5,
        alpha_lm=0.5,
        checkpoint_dir=tmp_path / "c",
        alpha_cos=0.3,
    )
    for r in json.loads((tmp_path / "s" / "training_log.json").read_text()):
        assert r["cos_loss"] > 0
        assert r["loss"] == pytest.approx(
            0.5 * r["kd_loss"] + 0.5 * r["lm_loss"] + 0.3 * r["cos_loss"], rel=1e-5
        )
