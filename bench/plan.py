"""How long Snakemake takes to plan: the paper preset at full RealToxicityPrompts scale, and a
no-op rerun of a finished study.

    .venv/bin/python bench/plan.py [--study-dir DIR] [--prompts 99442]

1. Writes a synthetic RealToxicityPrompts copy in the hub format with 99,442
   prompts (made-up text and scores: never the real data), points the paper
   preset's two RTP prompt sets at it (the preset's own selections: toxic and
   non-toxic prompts of the whole set, ``n`` of each), prepares the prompt sets
   for real (the hub-format loader reads all 99,442 rows) and times the dry run that
   then plans every shard of every model and seed.
2. With ``--study-dir`` (a folder where the default study has finished, e.g. a
   fresh clone after ``snakemake --cores 2``), times ``snakemake -n`` there: the
   no-op rerun, which must schedule nothing.

Prints one table; the README quotes it. Both are wall-clock seconds of the
whole Snakemake process, start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from compfair.data.rtp import PERSPECTIVE_ATTRIBUTES as ATTRIBUTES

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def synthetic_rtp(path: Path, n: int, seed: int = 0) -> None:
    """``n`` prompts in the hub layout of allenai/real-toxicity-prompts, made up."""
    rng = random.Random(seed)
    words = "the a of to and in that it was he she they we said would could news game".split()
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):

            def part() -> dict:
                text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
                return {"text": text, **{a: round(rng.random(), 4) for a in ATTRIBUTES}}

            row = {
                "filename": f"{i:07d}-synthetic.txt",
                "begin": 0,
                "end": 80,
                "challenging": rng.random() < 0.012,
                "prompt": part(),
                "continuation": part(),
            }
            fh.write(json.dumps(row) + "\n")


def run(workdir: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", *args],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return seconds, proc.stdout + proc.stderr


def jobs_planned(output: str) -> int:
    match = re.search(r"^total\s+(\d+)$", output, re.M)
    return int(match.group(1)) if match else 0


def paper_plan(n_prompts: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        synthetic_rtp(work / "rtp.jsonl", n_prompts)
        fixtures = REPO / "tests" / "fixtures"
        local = {
            "prompts": {
                # the preset's own selections (toxic and non-toxic, n of each) from the local copy
                "rtp": {"path": str(work / "rtp.jsonl")},
                "rtp_nontoxic": {"path": str(work / "rtp.jsonl")},
                "bold": {"source": "bold_hub", "path": str(fixtures / "bold_hub.jsonl")},
            },
            "intrinsic": {
                "crows_pairs": {
                    "source": "jsonl",
                    "path": str(fixtures / "intrinsic" / "crows_pairs_hub.jsonl"),
                },
                "stereoset": {
                    "source": "jsonl",
                    "path": str(fixtures / "intrinsic" / "stereoset_hub.jsonl"),
                },
            },
        }
        (work / "local.yaml").write_text(yaml.safe_dump(local))
        args = ("--configfile", str(REPO / "presets" / "paper.yaml"), str(work / "local.yaml"))
        run(work, *args, "--until", "prepare_prompts")
        seconds, output = run(work, *args, "-n", "--quiet", "rules")
        return seconds, jobs_planned(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=99_442)
    parser.add_argument("--study-dir", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    seconds, jobs = paper_plan(args.prompts)
    rows.append((f"paper preset, {args.prompts:,} RTP prompts: dry run", seconds, jobs, 30.0))
    if args.study_dir is not None:
        seconds, output = run(args.study_dir, "-n")
        rows.append(
            ("finished default study: no-op rerun (-n)", seconds, jobs_planned(output), 3.0)
        )
    print(f"{'what':<52} {'seconds':>8} {'jobs planned':>13} {'goal (s)':>9}")
    for what, seconds, jobs, goal in rows:
        print(f"{what:<52} {seconds:>8.1f} {jobs:>13,} {goal:>9.0f}")


if __name__ == "__main__":
    main()
