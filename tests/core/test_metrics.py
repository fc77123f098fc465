"""The metric registry: every name it refers to is a declared metric."""

import numpy as np

from runner.core.metrics import BY_NAME, DETERMINISTIC
from runner.core.observations import OBSERVATIONS_BY_NAME


def test_every_deterministic_metric_is_declared() -> None:
    assert set(BY_NAME) >= DETERMINISTIC, sorted(DETERMINISTIC - set(BY_NAME))


def test_timings_are_never_judged_as_facts() -> None:
    assert not {name for name in DETERMINISTIC if BY_NAME[name].unit == "ns"}


def test_a_per_thread_observation_divides_by_one_threads_ops() -> None:
    """churn with 2 threads of 100 pairs: a per-op total divides by the 200 blocks of both, the
    slowest thread's time by its own 100 pairs."""
    blocks, ops = np.asarray([200]), np.asarray([100])
    slowest = OBSERVATIONS_BY_NAME["slowest_thread_ns"]
    assert slowest.metric.name == "slowest_thread_ns_per_op"
    assert slowest.metric_value(np.asarray([5000.0]), blocks, ops).tolist() == [50.0]
    syscalls = OBSERVATIONS_BY_NAME["allocate_syscalls"]
    assert syscalls.metric_value(np.asarray([400.0]), blocks, ops).tolist() == [2.0]


def test_every_metric_has_a_short_one_line_name_of_its_own() -> None:
    """A chart's y axis and a table's header show the short name: one line, a few words, and
    no two metrics alike (the description, shown beside it, says the rest)."""
    from runner.core.metrics import METRICS
    from runner.core.observations import OBSERVATIONS_BY_NAME
    names = [m.short_name for m in METRICS]
    assert len(set(names)) == len(names)
    for metric in METRICS:
        assert 0 < len(metric.short_name) <= 48 and "\n" not in metric.short_name, metric.name
        assert metric.short_name != metric.description, metric.name
    assert BY_NAME["first_touch_ns_per_page"].short_name == "first touch time per page"
    assert OBSERVATIONS_BY_NAME["usable_bytes"].metric.short_name == "usable size per block"


def test_churn_s_allocate_metrics_are_named_for_the_pair_they_time() -> None:
    from runner.core.metrics import short_name

    assert short_name("allocate_ns_per_op", {"churn"}) == "time per allocate-use-release pair"
    # Mixed with cycle, or any other workload: the phase's own name.
    assert short_name("allocate_ns_per_op", {"churn", "cycle"}) == "allocate time per block"
    assert short_name("allocate_ns_per_op") == "allocate time per block"
    assert short_name("free_ns_per_op", {"churn"}) == BY_NAME["free_ns_per_op"].short_name
