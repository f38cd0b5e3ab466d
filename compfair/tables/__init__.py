"""The tables stage: the per-job result files in, the study's tables out.

One rule (``aggregate_metrics``) calls :func:`compfair.tables.build.aggregate_metrics`.
Every table's row is a frozen dataclass whose fields are its columns
(:mod:`~compfair.tables.rows`); the modules, in the order the data flows:

- :mod:`~compfair.tables.files`: readers of the result files, each checking what it reads;
- :mod:`~compfair.tables.prompts`: every scores file reduced to one row per prompt;
- :mod:`~compfair.tables.specs`: the metrics, their order and their labels in figures;
- :mod:`~compfair.tables.estimates`: a prompt set's metrics with intervals, marginal and
  paired with the parent;
- :mod:`~compfair.tables.collect`: rows per seed and over the seeds, comparisons, model-level
  rows;
- :mod:`~compfair.tables.intrinsic`: the intrinsic-bias benchmarks' rows and their item-by-item
  comparisons;
- :mod:`~compfair.tables.flags`: the quality guards; :mod:`~compfair.tables.models`:
  ``models.csv``; :mod:`~compfair.tables.controls`: ``matched_controls.csv``;
- :mod:`~compfair.tables.build`: the stage itself.

Nothing is imported here, so a figure that reads :data:`~compfair.tables.specs.METRIC_LABELS`
loads no more than that module.
"""
