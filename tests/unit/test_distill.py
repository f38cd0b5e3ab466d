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

from compfair import io
from compfair.compression.run import calibration_windows
from compfair.distill import (
    block_influence,
    choose_student_layers,
    distill,
    distillation_loss,
    hidden_cosine_loss,
    influential_layers,
    init_student_from_teacher,
    student_layers,
)
from compfair.io import InputError
from compfair.models import decoder_blocks, load_model, save_model
from compfair.training import TrainConfig, load_tokens

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


# --------------------------------------------------------------- layer selection
#
# A block whose attention and MLP output matrices (and biases) are zero passes
# its input through unchanged (h + 0 + 0): its Block Influence is 0.

CALIBRATION = torch.randint(0, 100, (4, 8), generator=torch.Generator().manual_seed(2))


def _pass_through(model: nn.Module, layer: int) -> None:
    """Zero the attention-output and MLP-output matrices (and biases) of block ``layer``."""
    block = decoder_blocks(model)[layer]
    if hasattr(block, "attn"):  # GPT-2: Conv1D with biases
        outputs = [block.attn.c_proj, block.mlp.c_proj]
    else:  # Llama: nn.Linear without biases
        outputs = [block.self_attn.o_proj, block.mlp.down_proj]
    with torch.no_grad():
        for module in outputs:
            module.weight.zero_()
            if module.bias is not None:
                module.bias.zero_()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_block_influence_drops_the_pass_through_layer(
    arch: str, gpt2_factory: Factory, llama_factory: Factory
) -> None:
    teacher = (gpt2_factory if arch == "gpt2" else llama_factory)(n_layer=5, seed=3)
    _pass_through(teacher, 1)
    influence = block_influence(teacher, CALIBRATION)
    assert len(influence) == 5
    assert influence[1] == pytest.approx(0.0, abs=1e-12)
    assert all(s > 1e-4 for i, s in enumerate(influence) if i != 1)
    layers, record = choose_student_layers(teacher, 0.8, "block_influence", CALIBRATION)
    assert layers == [0, 2, 3, 4]  # k = round(0.8 x 5) = 4: exactly the identity goes
    assert record == {"layer_selection": "block_influence", "layer_influence": influence}
    # the even spread of the same share drops layer 2 instead
    assert choose_student_layers(teacher, 0.8)[0] == [0, 1, 3, 4]


def test_block_influence_keeps_first_and_last_even_when_least_influential(
    llama_factory: Factory,
) -> None:
    teacher = llama_factory(n_layer=5, seed=4)
    for layer in (0, 4):
        _pass_through(teacher, layer)
    influence = block_influence(teacher, CALIBRATION)
    assert influence[0] == pytest.approx(0.0, abs=1e-12)
    assert influence[4] == pytest.approx(0.0, abs=1e-12)
    weakest_middle = min(range(1, 4), key=lambda i: influence[i])
    layers, _ = choose_student_layers(teacher, 0.8, "block_influence", CALIBRATION)
    assert layers == [i for i in range(5) if i != weakest_middle]
    assert 0 in layers and 4 in layers


@pytest.mark.parametrize(
    "influence, keep, expected",
    [
        ([0.0, 0.5, 0.3, 0.9, 0.0], 0.8, [0, 1, 3, 4]),  # ends kept at influence 0
        ([0.0, 0.5, 0.3, 0.9, 0.0], 0.6, [0, 3, 4]),
        ([1.0, 0.2, 0.2, 0.2, 1.0], 0.8, [0, 2, 3, 4]),  # a tie: the earlier layer goes
        ([1.0, 0.2, 0.2, 0.2, 1.0], 0.6, [0, 3, 4]),
        ([0.1] * 30, 0.9, [0, *range(4, 30)]),  # 27 of SmolLM2's 30 layers, all tied
        ([0.3, 0.1], 0.99, [0, 1]),  # round(0.99 x 2) = 2: nothing to drop
    ],
)
def test_influential_layers(influence: list[float], keep: float, expected: list[int]) -> None:
    assert influential_layers(influence, keep) == expected


def test_influential_layers_refuses_a_share_below_first_and_last() -> None:
    with pytest.raises(InputError, match=r"round\(0.25 x 4 layers\) = 1"):
        influential_layers([0.1, 0.2, 0.3, 0.4], 0.25)


def test_even_selection_is_todays_choice(gpt2_factory: Factory) -> None:
    teacher = gpt2_factory(n_layer=12)
    assert choose_student_layers(teacher, 0.5) == ([0, 2, 4, 7, 9, 11], {"layer_selection": "even"})
    assert choose_student_layers(teacher, 0.5, "even", CALIBRATION)[0] == [0, 2, 4, 7, 9, 11]
    # a named choice or a list is used as given, whatever the rule; no calibration needed
    for keep, expected in [("distilgpt2", [0, 2, 4, 7, 9, 11]), ([1, 5, 8], [1, 5, 8])]:
        for selection in ("even", "block_influence"):
            layers, record = choose_student_layers(teacher, keep, selection)
            assert layers == expected and record == {"layer_selection": "as_given"}
    with pytest.raises(InputError, match="needs calibration sequences"):
        choose_student_layers(teacher, 0.5, "block_influence")
    with pytest.raises(InputError, match="'shortgpt': not one of even, block_influence"):
        choose_student_layers(teacher, 0.5, "shortgpt")


def test_block_influence_student_records_its_choice(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """A distilled student of block 2 removed records the rule, the layers and each influence."""
    teacher, tokenizer = load_model(tiny_gpt2_dir)
    _pass_through(teacher, 2)
    save_model(teacher, tokenizer, tmp_path / "teacher", io.provenance(step="test teacher"))
    ids = torch.randint(0, 50257, (300,), generator=torch.Generator().manual_seed(0))
    safetensors.torch.save_file({"input_ids": ids}, str(tmp_path / "train.safetensors"))
    cfg = TrainConfig(steps=1, batch_size=2, seq_len=8, warmup_steps=0, seed=0)
    calibration = {"n_sequences": 4, "seq_len": 8}
    kwargs = {"temperature": 2.0, "alpha_kd": 0.5, "alpha_lm": 0.5, "keep": 0.75}
    for selection in ("block_influence", "even"):
        distill(
            tmp_path / "teacher",
            tmp_path / "train.safetensors",
            tmp_path / selection,
            cfg,
            checkpoint_dir=tmp_path / f"ckpt-{selection}",
            layer_selection=selection,
            calibration=calibration,
            **kwargs,
        )
    prov = json.loads((tmp_path / "block_influence" / "provenance.json").read_text())
    assert prov["layer_selection"] == "block_influence"
    assert prov["layers"] == [0, 1, 3] and prov["student_layers"] == 3
    assert prov["layer_calibration"] == calibration
    influence = prov["layer_influence"]
    assert len(influence) == 4 and influence[2] == pytest.approx(0.0, abs=1e-12)
    assert min(influence[0], influence[1], influence[3]) > 1e-4
    # the windows the depth method draws with the same seed: the same influences (up to
    # float32 rounding of the reloaded teacher's forward pass)
    windows = calibration_windows(load_tokens(tmp_path / "train.safetensors"), 4, 8, 0)
    assert influence == pytest.approx(block_influence(teacher, windows), rel=1e-5)
    # the default spread takes its layers as before and records no influence
    even = json.loads((tmp_path / "even" / "provenance.json").read_text())
    assert even["layers"] == [0, 2, 3] == student_layers(4, 0.75)
    assert even["layer_selection"] == "even"
    assert even["layer_influence"] is None and even["layer_calibration"] is None
