"""Size of the paired tests and coverage of the intervals at few units, by simulation.

    .venv/bin/python bench/coverage.py [--repetitions 1000] [--method expanded] [--min-units 1]

For each kind of per-unit values (normal, skewed Beta(0.5, 3), 0/1) and each number of units,
this simulates a model and its parent under the null (exchangeable values of each unit,
:func:`compfair.simulation.paired_null`) and runs the package's own functions on them
(:func:`compfair.simulation.check_methods`): ``p<0.05`` is the share of paired p-values below
0.05 (the randomization test; 0.05 or less is right), ``paired`` and ``marginal`` the coverage
of the 95 % intervals of the paired difference and of one model's mean where they are reported
(with at least ``--min-units`` units), ``reported`` the share of paired rows given an interval.
``bootstrap.min_units`` (10) is the smallest number of units from which the paired intervals of
every kind cover at least 93 % with ``--min-units 1``.
"""

from __future__ import annotations

import argparse

from compfair.metrics import METHODS, Bootstrap
from compfair.simulation import KINDS, check_methods

UNITS = (2, 3, 5, 8, 10, 15, 20, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--method", choices=METHODS, default="expanded")
    parser.add_argument("--min-units", type=int, default=1)
    args = parser.parse_args()
    boot = Bootstrap(n_resamples=args.resamples, method=args.method, min_units=args.min_units)
    print(f"method {args.method}, {args.repetitions} repetitions, min_units {args.min_units}")
    print(f"{'kind':8} {'units':>5} {'p<0.05':>7} {'paired':>7} {'marginal':>8} {'reported':>8}")
    for kind in KINDS:
        for n in UNITS:
            c = check_methods(kind, n, args.repetitions, boot, seed=0)
            print(
                f"{kind:8} {n:5d} {c.rejections:7.3f} {c.paired_coverage:7.3f}"
                f" {c.marginal_coverage:8.3f} {c.reported:8.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
