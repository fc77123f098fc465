"""The metric registry: every name it refers to is a declared metric."""

from runner.core.metrics import BY_NAME, DETERMINISTIC


def test_every_deterministic_metric_is_declared() -> None:
    assert set(BY_NAME) >= DETERMINISTIC, sorted(DETERMINISTIC - set(BY_NAME))


def test_timings_are_never_judged_as_facts() -> None:
    assert not {name for name in DETERMINISTIC if BY_NAME[name].unit == "ns"}


def test_every_metric_has_a_short_one_line_name_of_its_own() -> None:
    """A chart's y axis and a table's header show the short name: one line, a few words, and
    no two metrics alike (the description, shown beside it, says the rest)."""
    from runner.core.metrics import METRICS, OBSERVATIONS_BY_NAME
    names = [m.short_name for m in METRICS]
    assert len(set(names)) == len(names)
    for metric in METRICS:
        assert 0 < len(metric.short_name) <= 48 and "\n" not in metric.short_name, metric.name
        assert metric.short_name != metric.description, metric.name
    assert BY_NAME["first_touch_ns_per_page"].short_name == "first touch time per page"
    assert OBSERVATIONS_BY_NAME["usable_bytes"].metric.short_name == "usable size per block"
