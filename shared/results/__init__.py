"""Reading analysis inputs from PostgreSQL and running the statistics engine on them.

Shared by the analysis service and the control plane (``complete`` records the winner
with :func:`determine_winner`). See ``docs/analysis.md``.
"""

from shared.results.aggregates import (
    METRICS,
    STAT_SUM_COLUMNS,
    SUM_COLUMNS,
    ArmAggregate,
    Queryable,
)
from shared.results.experiment import (
    ArmRecord,
    ExperimentInputs,
    ExperimentNotFound,
    ExperimentRecord,
    ExperimentResult,
    ExposureCounts,
    ProgressModel,
    VariantResult,
    WinnerDecision,
    analyze,
    determine_winner,
    fetch_exposure_counts,
    fetch_inputs,
    load_experiment_result,
    load_experiment_results,
    winner_of,
)
from shared.results.models import (
    ArmSummaryModel,
    Finite,
    MetricResult,
    ResultModel,
    SrmModel,
    finite,
)
from shared.results.sketch import MergedSketch, SketchFormatError

__all__ = [
    "METRICS",
    "STAT_SUM_COLUMNS",
    "SUM_COLUMNS",
    "ArmAggregate",
    "ArmRecord",
    "ArmSummaryModel",
    "ExperimentInputs",
    "ExperimentNotFound",
    "ExperimentRecord",
    "ExperimentResult",
    "ExposureCounts",
    "Finite",
    "MergedSketch",
    "MetricResult",
    "ProgressModel",
    "Queryable",
    "ResultModel",
    "SketchFormatError",
    "SrmModel",
    "VariantResult",
    "WinnerDecision",
    "analyze",
    "determine_winner",
    "fetch_exposure_counts",
    "fetch_inputs",
    "finite",
    "load_experiment_result",
    "load_experiment_results",
    "winner_of",
]
