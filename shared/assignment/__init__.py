"""Pure, hot-path assignment logic: GrowthBook-compatible hashing and bucketing,
JSON Merge Patch for variant definitions, the compiled per-schema decision table and
its export as a GrowthBook SDK payload. No I/O."""

from .decision import CompiledSchema, Decision, Reason, SupportsRandom, decide, rollout_seed
from .growthbook_payload import BASE_VALUE, sdk_feature, sdk_features, sdk_payload
from .hashing import (
    FNV32_OFFSET_BASIS,
    FNV32_PRIME,
    fnv1a32,
    gb_hash,
    in_namespace,
    make_hasher_v2,
)
from .merge_patch import effective_definition, merge_patch
from .ranges import (
    bucket_ranges,
    choose_variant,
    equal_weights,
    in_range,
    normalized_weights,
)

__all__ = [
    "BASE_VALUE",
    "FNV32_OFFSET_BASIS",
    "FNV32_PRIME",
    "CompiledSchema",
    "Decision",
    "Reason",
    "SupportsRandom",
    "bucket_ranges",
    "choose_variant",
    "decide",
    "effective_definition",
    "equal_weights",
    "fnv1a32",
    "gb_hash",
    "in_namespace",
    "in_range",
    "make_hasher_v2",
    "merge_patch",
    "normalized_weights",
    "rollout_seed",
    "sdk_feature",
    "sdk_features",
    "sdk_payload",
]
