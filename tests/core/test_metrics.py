"""The metric registry: every name it refers to is a declared metric."""

from runner.core.metrics import BY_NAME, DETERMINISTIC


def test_every_deterministic_metric_is_declared() -> None:
    assert set(BY_NAME) >= DETERMINISTIC, sorted(DETERMINISTIC - set(BY_NAME))


def test_timings_are_never_judged_as_facts() -> None:
    assert not {name for name in DETERMINISTIC if BY_NAME[name].unit == "ns"}
