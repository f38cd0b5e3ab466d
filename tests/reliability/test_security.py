"""Nothing unsafe is loaded, no pickled weights are written, no token is recorded.

* every ``torch.load`` in the package and the rule scripts passes
  ``weights_only=True`` (a pickle can run code when it is loaded);
* model weights go to ``.safetensors`` only; the one ``torch.save`` is the
  training checkpoint's optimizer / RNG state, read back with ``weights_only=True``;
* a token in the environment (``HF_TOKEN``) never reaches ``provenance.json``;
* a user's Detoxify checkpoint is read with ``weights_only=True`` (the library itself would
  unpickle it with ``weights_only=False``): a pickled payload is refused and never runs.
  (The workflow-wide check of logs and results is in ``test_kill_resume.py``.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from compfair import io
from compfair.io import InputError
from compfair.models import load_model, save_model
from compfair.scoring import get_scorer
from compfair.training import TrainConfig, train
from tests.support import build_random_detoxify_checkpoint
from tests.workflow.conftest import REPO

SOURCES = sorted([*(REPO / "compfair").rglob("*.py"), *(REPO / "workflow_scripts").rglob("*.py")])
SECRET = "hf_securityTestSecretToken0123456789"


def _calls(name: str) -> list[tuple[str, int, ast.Call]]:
    """Every call of ``<something>.<name>(...)`` or ``<name>(...)`` in the sources."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    found.append((str(path.relative_to(REPO)), node.lineno, node))
    return found


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else kw.value
    return None


def test_every_torch_load_is_weights_only() -> None:
    loads = [(f, n, c) for f, n, c in _calls("load") if ast.unparse(c.func) == "torch.load"]
    assert loads, "expected the checkpoint loader's torch.load"
    unsafe = [f"{f}:{n}" for f, n, c in loads if _keyword(c, "weights_only") is not True]
    assert not unsafe, f"torch.load without weights_only=True at {unsafe}"


def test_no_pickled_weights_are_written() -> None:
    text = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in SOURCES}
    for path, source in text.items():
        assert "safe_serialization=False" not in source, path
        assert "pytorch_model.bin" not in source or path == "compfair/models.py", (
            path
        )  # models.py only reads it
        assert "pickle.dump" not in source and "joblib.dump" not in source, path
        # Reading a pickle: only the jigsaw_bilstm scorer's tokenizer, through an
        # unpickler that refuses every class but the Keras tokenizer's plain data.
        if "import pickle" in source:
            assert (
                path == "compfair/scoring/scorers/jigsaw_bilstm.py"
                and "class _TokenizerUnpickler(pickle.Unpickler)" in source
            ), path
    saves = [f"{f}:{n}" for f, n, c in _calls("save") if ast.unparse(c.func) == "torch.save"]
    assert len(saves) == 1 and saves[0].startswith("compfair/training.py:"), saves
    for f, n, c in _calls("save_pretrained"):
        assert _keyword(c, "safe_serialization") in (None, True), f"{f}:{n}"


def test_saved_models_and_checkpoints_hold_safetensors_weights_only(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model, tokenizer = load_model(tiny_model_dir)
    save_model(model, tokenizer, tmp_path / "model", io.provenance(step="test"))
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert "model.safetensors" in names
    assert not [
        n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"))
    ], names

    tokens = torch.randint(0, model.config.vocab_size, (100,))
    train(
        model,
        tokens,
        TrainConfig(steps=1, batch_size=2, seq_len=8, warmup_steps=0),
        tmp_path / "ckpt",
    )
    last = tmp_path / "ckpt" / "last"
    assert sorted(p.name for p in last.iterdir()) == ["model.safetensors", "run.json", "state.pt"]
    state = torch.load(last / "state.pt", weights_only=True)  # refuses arbitrary pickles
    assert set(state) == {
        "step",
        "optimizer",
        "generator",
        "torch_rng",
        "history",
    }  # no weights here


def test_provenance_records_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY"):
        monkeypatch.setenv(name, SECRET)
    record = io.provenance(step="test", seed=1)
    assert SECRET not in repr(record)
    assert set(record) == {"step", "seed", "python", "packages"}


def test_model_folder_holds_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compfair.models import import_base_model

    monkeypatch.setenv("HF_TOKEN", SECRET)
    spec = {
        "source": "tiny_gpt2",
        "tiny": {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 32},
    }
    import_base_model(spec, tmp_path / "base", seed=0)
    leaks = [p.name for p in (tmp_path / "base").iterdir() if SECRET.encode() in p.read_bytes()]
    assert not leaks


class _Payload:
    """Unpickled, it creates the file ``path`` (a harmless stand-in for running code)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def test_a_detoxify_checkpoint_carrying_code_is_refused_and_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's Detoxify checkpoint is read with weights_only=True by the scorer, not by the
    library (which unpickles it with weights_only=False): a pickled payload is refused, naming
    the file and the config key, and does not run. The library's own load would run it."""
    pytest.importorskip("detoxify")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ckpt, folder, _ = build_random_detoxify_checkpoint(tmp_path)
    marker = tmp_path / "payload-ran"
    tampered = tmp_path / "tampered.ckpt"
    torch.save({**torch.load(ckpt, weights_only=True), "extra": _Payload(str(marker))}, tampered)
    options = {"device": "cpu", "huggingface_config_path": str(folder)}
    with pytest.raises(InputError, match=r"tampered\.ckpt refused .*scorer_options\.checkpoint"):
        get_scorer("detoxify", checkpoint=str(tampered), **options)
    assert not marker.exists()
    scorer = get_scorer("detoxify", checkpoint=str(ckpt), **options)  # the clean one loads
    assert scorer.score(["you are nice"]).shape == (1,)
    from detoxify.detoxify import load_checkpoint

    load_checkpoint(checkpoint=str(tampered), huggingface_config_path=str(folder))
    assert marker.exists()  # what the scorer's own read prevents
