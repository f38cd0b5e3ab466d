"""The calibrated methods on every family of ``tests.support``: runner, driver, reload, generate.

The calibration runner is checked against the real forward pass: what every
matrix reads when the blocks are replayed one by one must be what it reads
inside ``model(ids)`` (same masks, positions, rotary embeddings, ALiBi), and,
after a block is compressed, what the next block reads must be what it reads
in the compressed model. Then each method goes through
:func:`compfair.compression.run.compress_model` on a saved 2-layer folder of
each family, and the saved folder must load with plain ``from_pretrained``
and generate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from compfair import io
from compfair.architecture import compressible_matrices, find_blocks, weight_out_in
from compfair.compression.calibrate import LayerInputs, compress_sequentially
from compfair.compression.run import REPORT_FILE, compress_model
from compfair.models import save_model
from tests.support import FAMILIES, VOCAB, make, tiny_tokenizer

CALIBRATION = {"n_sequences": 4, "seq_len": 16}
#: (method, level, options) of every method of this change.
METHODS = [
    ("wanda", 0.5, {}),
    ("sparsegpt", 0.5, {}),
    ("gptq", 4, {"group_size": 16}),
    ("magnitude_nm", "2:4", {}),
    ("wanda_nm", "2:4", {}),
    ("sparsegpt_nm", "4:8", {}),
    ("noise", 0.1, {}),
]


def _ids(n: int = 5, seq_len: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, VOCAB, (n, seq_len), generator=torch.Generator().manual_seed(seed))


def _forward_stats(model: nn.Module, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """``X^T X`` of every compressible matrix inside one ordinary forward pass."""
    stats = {name: LayerInputs("hessian") for name, _ in compressible_matrices(model)}
    handles = [
        module.register_forward_hook(lambda _m, args, _o, n=name: stats[n].add(args[0]))
        for name, module in compressible_matrices(model)
    ]
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for handle in handles:
            handle.remove()
    return {name: s.xtx for name, s in stats.items()}


def _sequential_stats(
    model: nn.Module, ids: torch.Tensor, batch_size: int = 2, zero_block: int | None = None
) -> dict[str, torch.Tensor]:
    """``X^T X`` per matrix from the runner; ``zero_block``: zero that block's first matrix."""
    seen: dict[str, torch.Tensor] = {}

    def compress(name: str, module: nn.Module, stats: LayerInputs) -> dict:
        seen[name] = stats.xtx.clone()
        if zero_block is not None and name == _first_matrix(model, zero_block):
            weight_out_in(module).zero_()
        return {"rows": stats.n_rows}

    reports = compress_sequentially(model, ids, "hessian", compress, batch_size=batch_size)
    assert set(reports) == set(seen) and all(r["rows"] == ids.numel() for r in reports.values())
    return seen


def _first_matrix(model: nn.Module, block: int) -> str:
    prefix = find_blocks(model)[0]
    return next(n for n, _ in compressible_matrices(model) if n.startswith(f"{prefix}.{block}."))


def _assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(
            got[name], want[name], rtol=1e-4, atol=1e-4 * float(want[name].abs().max())
        )


# --------------------------------------------------------------------------- the calibration runner


@pytest.mark.parametrize("family", FAMILIES)
def test_replayed_blocks_read_what_the_forward_pass_gives(family: str) -> None:
    model = make(family, n_layer=2)
    ids = _ids()
    want = _forward_stats(model, ids)
    _assert_same(_sequential_stats(model, ids, batch_size=2), want)  # batches of 2, 2, 1
    assert "forward" not in vars(find_blocks(model)[1][0])  # the recorders are gone


@pytest.mark.parametrize("family", FAMILIES)
def test_next_block_reads_the_compressed_block_output(family: str) -> None:
    model = make(family, n_layer=2)
    ids = _ids(seed=1)
    got = _sequential_stats(model, ids, zero_block=0)
    compressed = make(family, n_layer=2)
    with torch.no_grad():
        weight_out_in(dict(compressed.named_modules())[_first_matrix(compressed, 0)]).zero_()
    before, after = _forward_stats(make(family, n_layer=2), ids), _forward_stats(compressed, ids)
    prefix = find_blocks(model)[0]
    # Block 0 is measured before it is compressed (all its matrices in one pass);
    # block 1 reads the output of the compressed block 0.
    _assert_same({n: t for n, t in got.items() if n.startswith(f"{prefix}.0.")},
                 {n: t for n, t in before.items() if n.startswith(f"{prefix}.0.")})  # fmt: skip
    _assert_same({n: t for n, t in got.items() if n.startswith(f"{prefix}.1.")},
                 {n: t for n, t in after.items() if n.startswith(f"{prefix}.1.")})  # fmt: skip
    second = _first_matrix(model, 1)
    assert not torch.allclose(after[second], before[second])  # the zeroing mattered


@pytest.mark.parametrize("family", ["gemma2", "mistral"])
def test_per_layer_sliding_window_masks_are_replayed(family: str) -> None:
    ids = _ids(n=3, seq_len=16)
    narrow, wide = (make(family, n_layer=2, sliding_window=w) for w in (4, 64))
    want = _forward_stats(narrow, ids)
    _assert_same(_sequential_stats(narrow, ids), want)
    # The window matters here, so a replay with the wrong mask would be seen.
    wide_stats = _forward_stats(wide, ids)
    assert any(not torch.allclose(want[n], wide_stats[n], rtol=1e-3) for n in want)


def test_runner_restores_training_mode_and_refuses_bad_input() -> None:
    model = make("gpt2", n_layer=2).train()
    compress_sequentially(model, _ids(n=2), "norms", lambda n, m, s: {}, batch_size=4)
    assert model.training
    with pytest.raises(ValueError, match="statistic must be one of"):
        compress_sequentially(model, _ids(), "gradients", lambda n, m, s: {})
    with pytest.raises(ValueError, match="non-empty"):
        compress_sequentially(
            model, torch.zeros(0, 4, dtype=torch.long), "norms", lambda n, m, s: {}
        )


def test_shared_inputs_share_one_statistic() -> None:
    model = make("llama", n_layer=1)
    ids = _ids(n=2)
    shared: dict[str, LayerInputs] = {}
    compress_sequentially(model, ids, "norms", lambda n, m, s: shared.setdefault(n, s) and {})
    names = {n.rsplit(".", 1)[-1]: s for n, s in shared.items()}
    assert names["q_proj"] is names["k_proj"] is names["v_proj"]
    assert names["gate_proj"] is names["up_proj"] and names["o_proj"] is not names["q_proj"]
    assert names["q_proj"].n_rows == ids.numel()  # counted once, not three times


# --------------------------------------------------------------------------- every method, every family


@pytest.fixture(scope="module")
def parents(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Saved 2-layer parent folders, one per family (built on first use), and calibration tokens."""
    root = tmp_path_factory.mktemp("parents")
    tokens = root / "train.safetensors"
    safetensors.torch.save_file(
        {"input_ids": _ids(n=16, seq_len=16, seed=3).flatten()}, str(tokens)
    )
    cache: dict = {"tokens": tokens}

    def folder(family: str) -> Path:
        if family not in cache:
            save_model(
                make(family, n_layer=2), tiny_tokenizer(), root / family, io.provenance(step="test")
            )
            cache[family] = root / family
        return cache[family]

    cache["folder"] = folder
    return cache


@pytest.mark.parametrize(("method", "level", "options"), METHODS, ids=[m[0] for m in METHODS])
@pytest.mark.parametrize("family", FAMILIES)
def test_method_compresses_saves_reloads_and_generates(
    family: str, method: str, level: object, options: dict, parents: dict, tmp_path: Path
) -> None:
    parent = parents["folder"](family)
    out = tmp_path / "out"
    report = compress_model(
        parent, out, method, level, options, seed=0,
        calibration_tokens=parents["tokens"], calibration=CALIBRATION, variant=f"{method}-x",
    )  # fmt: skip
    saved = json.loads((out / REPORT_FILE).read_text())
    assert saved["method"] == method and saved["level"] == level
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    original = AutoModelForCausalLM.from_pretrained(parent).eval()
    _check_compressed(reloaded, original, method, report)
    prompt = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        generated = reloaded.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=3, min_new_tokens=3,
            do_sample=False, pad_token_id=0,
        )  # fmt: skip
    assert generated.shape == (1, 6) and torch.equal(generated[:, :3], prompt)
    assert int(generated.max()) < VOCAB


def _check_compressed(reloaded: nn.Module, original: nn.Module, method: str, report: dict) -> None:
    """The reloaded weights are what the method promises; nothing outside the blocks changed."""
    inside = {f"{n}.weight" for n, _ in compressible_matrices(original)}
    new = reloaded.state_dict()
    for name, tensor in original.state_dict().items():
        if name not in inside:
            assert torch.equal(new[name], tensor), name
    matrices = [weight_out_in(m) for _, m in compressible_matrices(reloaded)]
    zeros = sum(int((w == 0).sum()) for w in matrices) / sum(w.numel() for w in matrices)
    if method == "noise":
        assert zeros == 0 and report["verified_matrices"] == len(matrices)
        for reloaded_w, (_, m) in zip(matrices, compressible_matrices(original), strict=True):
            before = weight_out_in(m).double()
            rms = float((reloaded_w.double() - before).pow(2).mean().sqrt())
            assert rms / float(before.pow(2).mean().sqrt()) == pytest.approx(0.1, rel=1e-3)
    elif method == "gptq":
        assert report["max_distinct_per_group_after_reload"] <= 16
        assert report["mean"]["output_rel"] < report["mean"]["rtn_output_rel"]
        assert all(len(torch.unique(w[0, :16])) <= 16 for w in matrices)
    else:
        assert zeros == 0.5 == report["measured_after_reload"]
    changed = [not torch.equal(a, weight_out_in(b)) for a, (_, b) in
               zip(matrices, compressible_matrices(original), strict=True)]  # fmt: skip
    assert all(changed)
