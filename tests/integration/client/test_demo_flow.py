"""The ``make demo`` driver end to end against a fake assignment/analysis service (see
fake_stack.py) and the real Kafka: it creates the experiment, waits for assignment,
simulates, waits until every event is analysed, prints the report and exits 0 because
the planted treatment wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.demo.main import BEHAVIOUR_FILE, parse_args, run
from services.simulator import BehaviourSet
from tests.integration.client.fake_stack import FakeStack
from tests.ports import free_port

pytestmark = pytest.mark.integration


def _strong_effect() -> BehaviourSet:
    """The demo's behaviour with a larger planted effect, so that a small run (kept
    short for `make test`) detects it."""
    demo = BehaviourSet.from_file(BEHAVIOUR_FILE)
    control = demo.for_arm("control").model_copy(update={"success_probability": 0.70})
    treatment = demo.for_arm("treatment").model_copy(update={"success_probability": 0.85})
    return demo.model_copy(update={"variants": {"control": control, "treatment": treatment}})


async def test_demo_detects_the_planted_improvement(
    kafka_bootstrap: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeStack(kafka_bootstrap, topics, free_port()) as url:
        env_file = tmp_path / "env"
        env_file.write_text(
            f"export ASSIGNMENT_URL={url}\nexport ANALYSIS_URL={url}\n"
            f"export KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}\nexport TOPIC_PREFIX={topics}\n"
            "export CONSOLE_URL=http://console.test\n"
        )
        behaviour = tmp_path / "behaviour.json"
        behaviour.write_text(_strong_effect().model_dump_json())
        args = parse_args(
            ["--executions", "2000", "--env-file", str(env_file), "--suffix", "test-1",
             "--behaviour-file", str(behaviour), "--wait-timeout", "60",
             "--assign-timeout", "5"]
        )  # fmt: skip
        code = await run(args, {})
    out = capsys.readouterr().out
    assert code == 0, out
    assert "the assignment service serves the experiment" in out
    assert "analysis caught up" in out
    assert "Recommendation: ADOPT the treatment" in out
    assert "Winner: treatment" in out
    assert "-> ok (flagged when p < 0.001)" in out
    for metric in ("success_rate", "execution_time", "risk_score"):
        assert f"treatment   {metric}" in out
    assert "http://console.test" in out and f"{url}/metrics" in out
    assert "n/a" not in out.split("Variants")[1].split("Tests")[0]
