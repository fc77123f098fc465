"""A process's stored iterations as columns: one numpy array per value, checked on the way.

Parsed JSON gives one dict per iteration (a million samples are a million dicts, some 20
Python objects each: about a gigabyte, and seconds of first-touching memory on these VMs).
The report reads a run's records one at a time and keeps only these columns (runner.store.folders's
`load_run(..., columns=True)`); runner.analysis.frame builds its frame from them either way.

`decode_record` reads a whole samples line at once: its iterations decoded straight into
typed, untracked structs by msgspec against the schema runner.store.untrusted's checks
describe (half the time of parsing them into dicts and checking those, and nothing for the
garbage collector to walk), the rest of the record as plain values. `columns_of` takes the
columns of iterations already parsed as dicts. Each accepts exactly what
runner.store.untrusted's per-iteration checks accept, or gives up (None): the caller then parses
and checks as before, which names what is off, and converts one by one (`columns_by_iteration`),
as runner.analysis.frame always did.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt

from runner.core.model import PHASES
from runner.core.observations import OBSERVATIONS

PHASE_VALUES = ("ns", "minor_faults", "major_faults", "rss_bytes")


@dataclass(frozen=True)
class IterationColumns:
    """One process's iterations, column by column, in iteration order.

    `phases` maps (phase, value) to its column, value one of PHASE_VALUES; `observations`
    maps each observation of runner.core.metrics some iteration reported to its column, NaN where
    an iteration did not.
    """

    warmup: npt.NDArray[np.bool_]
    rss_before_bytes: npt.NDArray[np.int64]
    phases: Mapping[tuple[str, str], npt.NDArray[np.int64]]
    observations: Mapping[str, npt.NDArray[np.float64]]

    def __len__(self) -> int:
        return len(self.warmup)


_KNOWN = frozenset(o.name for o in OBSERVATIONS)
_GET_OBSERVATIONS = operator.methodcaller("get", "observations", {})
_PHASES_OF = operator.itemgetter(*PHASES)
_VALUES_OF = operator.itemgetter(*PHASE_VALUES)
_chain = itertools.chain.from_iterable


def _types(values: list[Any]) -> set[type]:
    return set(map(type, values))


def _whole(values: list[Any], rows: int) -> npt.NDArray[np.int64] | None:
    """Whole numbers >= 0 as `rows` rows of int64 (exactly int: JSON gives no subclass, and
    bool is not a number here); None otherwise, or past int64 (where the caller's one by one
    conversion says so)."""
    if values and _types(values) != {int}:
        return None
    try:
        column = np.array(values, dtype=np.int64)
    except OverflowError:
        return None
    return column.reshape(rows, -1) if not len(column) or column.min() >= 0 else None


def _observations(iterations: list[dict[str, Any]]) -> dict[str, npt.NDArray[np.float64]] | None:
    """The observations runner.core.metrics knows as float64 columns, when every iteration
    reported the same names in the same order, each a whole number >= 0 (the usual case: one
    process, one workload); None otherwise."""
    observations = list(map(_GET_OBSERVATIONS, iterations))
    if _types(observations) != {dict}:
        return None
    order = list(observations[0])
    # The names of all, in a row, against the first's repeated (no tuple per iteration).
    if list(_chain(observations)) != order * len(observations):
        return None
    values = _whole(list(_chain(map(dict.values, observations))), len(observations))
    if values is None:
        return None
    return {name: values[:, j].astype(np.float64) for j, name in enumerate(order)
            if name in _KNOWN}


def columns_of(iterations: list[Any]) -> IterationColumns | None:
    """The iterations as columns when every one passes runner.store.untrusted's checks (warmup a
    bool, rss_before_bytes and each phase's values whole numbers >= 0, observations whole numbers
    >= 0), values fit int64 and all report the same observations; None when any does not, or
    when there are none. Keys are not type-checked: the iterations come from JSON, whose keys
    are strings."""
    if not iterations or _types(iterations) != {dict}:
        return None
    try:
        warmup = list(map(operator.itemgetter("warmup"), iterations))
        rss_before = _whole(list(map(operator.itemgetter("rss_before_bytes"), iterations)),
                            len(iterations))
        phases = list(map(operator.itemgetter("phases"), iterations))
        if _types(warmup) != {bool} or rss_before is None or _types(phases) != {dict}:
            return None
        # Every phase of every iteration in a row: values[i, j] is the j-th (phase, what).
        per_phase = list(_chain(map(_PHASES_OF, phases)))
        if _types(per_phase) != {dict}:
            return None
        values = _whole(list(_chain(map(_VALUES_OF, per_phase))), len(iterations))
    except KeyError:
        return None
    observed = _observations(iterations)
    if values is None or observed is None:
        return None
    keys = [(phase, what) for phase in PHASES for what in PHASE_VALUES]
    return IterationColumns(np.array(warmup, dtype=bool), rss_before[:, 0],
                            {key: values[:, j] for j, key in enumerate(keys)}, observed)


def columns_by_iteration(iterations: list[Any]) -> IterationColumns:
    """The iterations as columns, read one by one as runner.analysis.frame always read them: what
    `columns_of` leaves (values that only pass as Python numbers, iterations built in
    memory); a value past int64 raises OverflowError, as it did there."""
    count = len(iterations)
    warmup = np.array([bool(it["warmup"]) for it in iterations], dtype=bool)
    rss_before = np.array([int(it["rss_before_bytes"]) for it in iterations], dtype=np.int64)
    # One pass over the iterations: values[i, j] is the j-th (phase, what) of iteration i.
    keys = [(phase, what) for phase in PHASES for what in PHASE_VALUES]
    values = np.array([[it["phases"][phase][what] for phase, what in keys]
                       for it in iterations], dtype=np.int64).reshape(count, len(keys))
    # Absent before probe version 2; each iteration reports the observations of its
    # workload only: a missing (or null) value becomes NaN in a float64 array.
    observed = [it.get("observations", {}) for it in iterations]
    return IterationColumns(warmup, rss_before,
                            {key: values[:, j] for j, key in enumerate(keys)},
                            _observations_by_name(observed))


def _observations_by_name(observed: list[dict[str, Any]]) -> dict[str, npt.NDArray[np.float64]]:
    names = sorted(_KNOWN & set().union(*observed))
    return {name: np.array([o.get(name) for o in observed], dtype=np.float64)
            for name in names}


def iteration_columns(iterations: list[Any] | IterationColumns) -> IterationColumns:
    """Columns of a record's iterations, whichever way the record was read."""
    if isinstance(iterations, IterationColumns):
        return iterations
    columns = columns_of(iterations)
    return columns if columns is not None else columns_by_iteration(iterations)


# The schema of an iteration as runner.store.untrusted checks it: whole numbers >= 0 (msgspec
# takes no bool or float for an int, and no null), a bool warm-up flag, every phase with every
# value; other keys (the checksum) are not read. Untracked by the garbage collector: they hold
# no containers it would need to walk.
_Whole = Annotated[int, msgspec.Meta(ge=0)]
_Phase = msgspec.defstruct("_Phase", [(what, _Whole) for what in PHASE_VALUES], gc=False)
_Phases = msgspec.defstruct("_Phases", [(phase, _Phase) for phase in PHASES], gc=False)
_Iteration = msgspec.defstruct("_Iteration", [
    ("warmup", bool), ("rss_before_bytes", _Whole), ("phases", _Phases),
    ("observations", dict[str, _Whole], msgspec.field(default_factory=dict))], gc=False)
_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ITERATIONS = msgspec.json.Decoder(list[_Iteration])  # type: ignore[valid-type]
_PLAIN = msgspec.json.Decoder()


def decode_record(line: bytes) -> dict[str, Any] | None:
    """A samples line as its record, probe["iterations"] already IterationColumns; None when
    the line is anything but an object whose probe is an object with iterations that pass
    runner.store.untrusted's checks and fit int64 (the caller then parses it as before)."""
    try:
        fields = _FIELDS.decode(line)
        if "probe" not in fields:
            return None
        probe = _FIELDS.decode(fields["probe"])  # null (a failed process): not an object
        if "iterations" not in probe:
            return None
        columns = _columns_of_structs(_ITERATIONS.decode(probe["iterations"]))
        if columns is None:
            return None
        return {key: ({name: columns if name == "iterations" else _PLAIN.decode(value)
                       for name, value in probe.items()} if key == "probe"
                      else _PLAIN.decode(raw)) for key, raw in fields.items()}
    except (msgspec.DecodeError, OverflowError):  # ValidationError is a DecodeError
        return None


_GET_WARMUP = operator.attrgetter("warmup")
_GET_RSS_BEFORE = operator.attrgetter("rss_before_bytes")
_GET_PHASES = operator.attrgetter("phases")
_GET_OBSERVATION_DICT = operator.attrgetter("observations")


def _columns_of_structs(iterations: list[Any]) -> IterationColumns | None:
    """Checked iterations (decode_record's structs) as columns; None when there are none.
    OverflowError for a value past int64."""
    count = len(iterations)
    if not count:
        return None
    phases = list(map(_GET_PHASES, iterations))
    columns = {}
    for phase in PHASES:
        values = list(map(operator.attrgetter(phase), phases))
        for what in PHASE_VALUES:
            columns[phase, what] = np.fromiter(map(operator.attrgetter(what), values),
                                               dtype=np.int64, count=count)
    return IterationColumns(
        np.fromiter(map(_GET_WARMUP, iterations), dtype=bool, count=count),
        np.fromiter(map(_GET_RSS_BEFORE, iterations), dtype=np.int64, count=count),
        columns, _checked_observations(list(map(_GET_OBSERVATION_DICT, iterations))))


def _checked_observations(observed: list[dict[str, int]]) -> dict[str, npt.NDArray[np.float64]]:
    """Observations decode_record checked (whole numbers >= 0) as float64 columns: by name
    straight away when every iteration reported the same names (the usual case), else NaN
    where an iteration did not report one (_observations_by_name)."""
    count, first = len(observed), observed[0]
    if set(map(len, observed)) == {len(first)}:
        try:
            for name in first.keys() - _KNOWN:  # the same names everywhere, not only known
                if not all(map(operator.contains, observed, itertools.repeat(name))):
                    raise KeyError(name)
            return {name: np.fromiter(map(operator.itemgetter(name), observed),
                                      dtype=np.float64, count=count)
                    for name in first if name in _KNOWN}
        except KeyError:
            pass
    return _observations_by_name(observed)
