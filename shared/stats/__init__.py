"""Pure statistics engine of the A/B testing platform.

Works on additive sufficient statistics (:class:`MeanStats`, :class:`ProportionStats`);
every result is a frozen dataclass with an ``error_code`` instead of exceptions and a
JSON-safe ``to_dict()``. See ``docs/statistics.md`` for the formulas.
"""

from shared.stats.compare import ArmSummary, MetricComparison, compare_metric
from shared.stats.errors import ErrorCode
from shared.stats.experiment import (
    SRM_WARNING,
    ExperimentAnalysis,
    ProgressResult,
    TreatmentAnalysis,
    analyze_experiment,
)
from shared.stats.lift import LiftResult, lift_variance, relative_lift
from shared.stats.metrics import (
    DEFAULT_METRICS,
    Direction,
    MetricKind,
    MetricSpec,
    get_metric_spec,
    is_improvement,
)
from shared.stats.multiple import holm_adjust, holm_reject
from shared.stats.power import (
    DEFAULT_POWER,
    SampleSizeResult,
    progress_percent,
    projected_days_remaining,
    sample_size_means,
    sample_size_proportions,
)
from shared.stats.proportions import (
    ProportionTestResult,
    cohens_h,
    two_proportion_test,
    unpooled_std_error,
)
from shared.stats.recommendation import (
    DEFAULT_MIN_SAMPLE_SIZE,
    Recommendation,
    overall_recommendation,
    recommend,
)
from shared.stats.sequential import (
    DEFAULT_TUNING_PARAMETER,
    SequentialInterval,
    confidence_sequence,
    sequential_halfwidth,
    sequential_multiplier,
    sequential_p_value,
    sequential_rho,
)
from shared.stats.srm import SRM_P_THRESHOLD, SrmResult, srm_check
from shared.stats.sufficient import MeanStats, MetricStats, ProportionStats
from shared.stats.welch import WelchResult, cohens_d, pooled_sd, welch_df, welch_test

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_MIN_SAMPLE_SIZE",
    "DEFAULT_POWER",
    "DEFAULT_TUNING_PARAMETER",
    "SRM_P_THRESHOLD",
    "SRM_WARNING",
    "ArmSummary",
    "Direction",
    "ErrorCode",
    "ExperimentAnalysis",
    "LiftResult",
    "MeanStats",
    "MetricComparison",
    "MetricKind",
    "MetricSpec",
    "MetricStats",
    "ProgressResult",
    "ProportionStats",
    "ProportionTestResult",
    "Recommendation",
    "SampleSizeResult",
    "SequentialInterval",
    "SrmResult",
    "TreatmentAnalysis",
    "WelchResult",
    "analyze_experiment",
    "cohens_d",
    "cohens_h",
    "compare_metric",
    "confidence_sequence",
    "get_metric_spec",
    "holm_adjust",
    "holm_reject",
    "is_improvement",
    "lift_variance",
    "overall_recommendation",
    "pooled_sd",
    "progress_percent",
    "projected_days_remaining",
    "recommend",
    "relative_lift",
    "sample_size_means",
    "sample_size_proportions",
    "sequential_halfwidth",
    "sequential_multiplier",
    "sequential_p_value",
    "sequential_rho",
    "srm_check",
    "two_proportion_test",
    "unpooled_std_error",
    "welch_df",
    "welch_test",
]
