"""The job-timings table reads Snakemake's benchmark files exactly."""

from pathlib import Path

import pandas as pd
import pytest

from compfair.io import InputError
from compfair.job_timings import gather_job_timings

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_gather_job_timings(tmp_path: Path) -> None:
    bench = tmp_path / "benchmarks"
    (bench / "prune_model" / "seed-1").mkdir(parents=True)
    (bench / "import_base_model.tsv").write_text(
        HEADER + "21.5\t0:00:21\t1079.4\t1\t1\t1\t0\t0\t90\t19\n"
    )
    (bench / "prune_model" / "seed-1" / "0.30.tsv").write_text(
        HEADER + "8.75\t0:00:08\t446.6\t1\t1\t1\t0\t0\t90\t7\n"
    )
    table = gather_job_timings(bench, tmp_path / "out.csv")
    assert table.to_dict("records") == [
        {"rule": "import_base_model", "wildcards": "", "seconds": 21.5, "max_rss_mb": 1079.4},
        {"rule": "prune_model", "wildcards": "seed-1/0.30", "seconds": 8.75, "max_rss_mb": 446.6},
    ]
    assert pd.read_csv(tmp_path / "out.csv", keep_default_na=False)["rule"].tolist() == [
        "import_base_model",
        "prune_model",
    ]


def test_bad_benchmark_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.tsv").write_text("nonsense\n")
    with pytest.raises(InputError, match="x.tsv"):
        gather_job_timings(tmp_path / "b", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_a_job_run_by_the_worker_reports_the_peak_its_child_logged(tmp_path: Path) -> None:
    """Snakemake measures only the process that handed the job over; the child logs its peak."""
    bench, logs = tmp_path / "benchmarks", tmp_path / "logs"
    (bench / "evaluate_model" / "seed-1").mkdir(parents=True)
    (logs / "evaluate_model" / "seed-1").mkdir(parents=True)
    (bench / "evaluate_model" / "seed-1" / "teacher.tsv").write_text(
        HEADER + "9.5\t0:00:09\t25.3\t1\t1\t1\t0\t0\t90\t7\n"
    )
    (bench / "import_base_model.tsv").write_text(
        HEADER + "21.5\t0:00:21\t1079.4\t1\t1\t1\t0\t0\t90\t19\n"
    )
    (logs / "evaluate_model" / "seed-1" / "teacher.log").write_text(
        "2026-12-01 10:00:00,000 INFO compfair.perplexity: teacher: perplexity 31.4\n"
        "2026-12-01 10:00:09,000 INFO compfair.worker: worker child: peak resident memory 1482 MB\n"
    )
    (logs / "import_base_model.log").write_text("no worker here\n")
    table = gather_job_timings(bench, tmp_path / "out.csv", log_dir=logs)
    assert table.set_index("rule")["max_rss_mb"].to_dict() == {
        "evaluate_model": 1482.0,
        "import_base_model": 1079.4,
    }
