"""Small numeric helpers: fast distribution functions (scipy.special ufuncs) and
finite-or-None conversion so results stay JSON-safe."""

from __future__ import annotations

import math

from scipy import special


def finite_or_none(x: float | None) -> float | None:
    """``x`` as a float when finite, else ``None`` (no NaN/Infinity ever leaves the package)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def is_valid_confidence(confidence_level: float) -> bool:
    """True when ``confidence_level`` is a finite number strictly inside (0, 1)."""
    return math.isfinite(confidence_level) and 0.0 < confidence_level < 1.0


def norm_ppf(q: float) -> float:
    """Standard normal quantile Φ⁻¹(q)."""
    return float(special.ndtri(q))


def t_ppf(q: float, df: float) -> float:
    """Student-t quantile with ``df`` degrees of freedom."""
    return float(special.stdtrit(df, q))


def norm_two_sided_p(z: float) -> float:
    """Two-sided normal p-value 2·Φ(−|z|)."""
    return 2.0 * float(special.ndtr(-abs(z)))


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided Student-t p-value 2·T_df(−|t|) (same ufunc as scipy.stats.ttest_ind)."""
    return 2.0 * float(special.stdtr(df, -abs(t)))


def chi2_sf(x: float, df: float) -> float:
    """Upper tail of the chi-squared distribution (same ufunc as scipy.stats.chi2.sf)."""
    return float(special.chdtrc(df, x))
