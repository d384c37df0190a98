"""Traffic simulator: a fleet of synthetic orchestrators driving the platform through
the public client (:mod:`shared.client`).

Run ``python -m services.simulator --help``.
"""

from .behaviour import (
    BASE_ARM,
    DEFAULT_BEHAVIOURS,
    BehaviourSet,
    DurationBehaviour,
    Outcome,
    RiskBehaviour,
    StepBehaviour,
    VariantBehaviour,
    sample_outcome,
)
from .progress import ProgressBar
from .runner import ArmTally, SimulationConfig, SimulationResult, run_simulation
from .summary import format_summary

__all__ = [
    "BASE_ARM",
    "DEFAULT_BEHAVIOURS",
    "ArmTally",
    "BehaviourSet",
    "DurationBehaviour",
    "Outcome",
    "ProgressBar",
    "RiskBehaviour",
    "SimulationConfig",
    "SimulationResult",
    "StepBehaviour",
    "VariantBehaviour",
    "format_summary",
    "run_simulation",
    "sample_outcome",
]
