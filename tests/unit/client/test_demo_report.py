"""The demo report reads the analysis service's status defensively (its field names are
being settled): the shape built from ``shared.stats.analyze_experiment``, a flat
variant shape, and an almost empty status all render without error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from statsmodels.stats.proportion import proportion_confint

from deploy.demo.main import _verify, load_env
from deploy.demo.main import main as demo_main
from deploy.demo.report import parse_status, render_report, wilson_interval
from shared.stats import MeanStats, ProportionStats, analyze_experiment

pytestmark = pytest.mark.unit

CONTROL_ID = "11111111-1111-4111-8111-111111111111"
TREATMENT_ID = "22222222-2222-4222-8222-222222222222"


def nested_status() -> dict[str, Any]:
    arms = {
        CONTROL_ID: {
            "success_rate": ProportionStats(8000, 10000),
            "execution_time": MeanStats(10000, 1.28e7, 1.28e7**2 / 10000 * 1.1),
            "risk_score": MeanStats(10000, 2000.0, 500.0),
        },
        TREATMENT_ID: {
            "success_rate": ProportionStats(8400, 10000),
            "execution_time": MeanStats(10000, 1.15e7, 1.15e7**2 / 10000 * 1.1),
            "risk_score": MeanStats(10000, 1820.0, 420.0),
        },
    }
    analysis = analyze_experiment(
        arms, CONTROL_ID, "success_rate", weights={CONTROL_ID: 50, TREATMENT_ID: 50}
    )
    return {
        "experiment_id": "e1",
        "status": "running",
        "variants": [
            {
                "variant_id": CONTROL_ID,
                "variant_key": "control",
                "is_control": True,
                "n": 10000,
                "success_rate": {"value": 0.8, "ci_low": 0.792, "ci_high": 0.808},
                "execution_time": {"mean": 1280.0, "p50": 1200, "p95": 2100, "p99": 2700},
                "risk_score": {"mean": 0.2},
            },
            {
                "variant_id": TREATMENT_ID,
                "variant_key": "treatment",
                "is_control": False,
                "n": 10000,
                "success_rate": {"value": 0.84, "ci_low": 0.833, "ci_high": 0.847},
                "execution_time": {"mean": 1150.0, "p50": 1080, "p95": 1900, "p99": 2450},
                "risk_score": {"mean": 0.182},
            },
        ],
        "analysis": analysis.to_dict(),
    }


def test_nested_shape_renders_every_section() -> None:
    status = parse_status(nested_status())
    assert status.total_n == 20000
    assert status.recommendation == "adopt_comparison"
    assert status.label(status.winner) == "treatment"
    assert {c.metric for c in status.comparisons} == {
        "success_rate",
        "execution_time",
        "risk_score",
    }
    text = render_report(status, title="t", links=[("API docs", "http://gw/docs")])
    assert "80.00% [79.20%, 80.80%]" in text and "*" not in text.split("Tests")[0]
    assert "1,200" in text and "2,450" in text and "0.182" in text
    assert "+4.00 pp" in text and "significant, better" in text
    assert "cohens_h" in text and "-> ok" in text
    assert "ADOPT the treatment" in text and "Winner: treatment" in text
    assert "http://gw/docs" in text
    assert _verify(status) == []


def test_flat_shape_and_computed_intervals() -> None:
    raw = {
        "confidence_level": 0.9,
        "variant_stats": {
            "control": {
                "is_control": True,
                "sample_size": 400,
                "successes": 300,
                "avg_execution_time_ms": 1000,
                "p95_execution_time_ms": 1800,
                "avg_risk_score": 0.3,
            },
            "treatment": {"sample_size": 380, "conversion_rate": 0.8},
        },
        "srm": {
            "observed": [400, 380],
            "expected": [390, 390],
            "p_value": 0.47,
            "is_mismatch": False,
        },
        "recommendation": "inconclusive",
    }
    status = parse_status(raw)
    control, treatment = sorted(status.variants, key=lambda v: v.key)
    assert control.n == 400 and control.success_rate == 0.75 and control.ci_computed
    assert control.mean_ms == 1000 and control.p95_ms == 1800 and control.mean_risk == 0.3
    assert treatment.success_rate == 0.8 and treatment.p99_ms is None
    text = render_report(status, title="t")
    assert "Wilson interval computed by the demo" in text
    assert "(the status has no comparisons)" in text
    assert _verify(status) == ["recommendation is 'inconclusive', not 'adopt_comparison'"]


def test_an_almost_empty_status_still_renders() -> None:
    status = parse_status({"weird": [1, 2]})
    assert status.total_n is None
    text = render_report(status, title="t")
    assert "(the status has no SRM check)" in text and "Recommendation: n/a" in text


def test_srm_mismatch_fails_the_check() -> None:
    raw = nested_status()
    raw["analysis"]["srm"]["is_mismatch"] = True
    assert any("sample ratio mismatch" in f for f in _verify(parse_status(raw)))


@pytest.mark.parametrize(("k", "n", "conf"), [(300, 400, 0.95), (1, 20, 0.9), (990, 1000, 0.99)])
def test_wilson_interval_matches_statsmodels(k: int, n: int, conf: float) -> None:
    lo, hi = wilson_interval(k, n, conf)
    ref = proportion_confint(k, n, alpha=1 - conf, method="wilson")
    assert lo == pytest.approx(ref[0], rel=1e-9) and hi == pytest.approx(ref[1], rel=1e-9)


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    f = tmp_path / "env"
    f.write_text("export A=1\nexport B='x y'\n# comment\nC=3\n")
    assert load_env(f, {"C": "env", "D": ""}) == {"A": "1", "B": "x y", "C": "env"}
    assert load_env(tmp_path / "missing", {"A": "2"}) == {"A": "2"}


def test_status_file_mode_renders_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "status.json"
    f.write_text(json.dumps(nested_status()))
    assert demo_main(["--status-file", str(f)]) == 0
    assert "Winner: treatment" in capsys.readouterr().out
