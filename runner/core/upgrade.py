"""Scenarios of every age in today's vocabulary: stored parameters upgraded (parameters added
since take their defaults, renamed values today's spelling) and the defaults Scenario.id leaves
out, so that results stored by earlier versions keep their ids and compare with today's."""

from __future__ import annotations

from collections.abc import Mapping

from runner.core.choices import WHOLE_READ_BUFFER, WHOLE_WRITE_BUFFER
from runner.core.kinds import Value
from runner.core.parameters import DEFAULTS, PARAMETERS


def upgrade_params(stored: Mapping[str, object]) -> dict[str, Value]:
    """Scenario parameters by field as a stored manifest has them, in today's vocabulary.

    Parameters added since the run was stored take their defaults (which is what the probe did
    then), and renamed values get today's spelling (populate true -> map-populate), so results
    of every age compare with each other.
    """
    upgraded = {p.field: p.upgrade(stored[p.field]) if p.field in stored else p.default
                for p in PARAMETERS}
    if upgraded["backing"] == "read-file" and "read_buffer_bytes" not in stored:
        upgraded["read_buffer_bytes"] = WHOLE_READ_BUFFER  # what read-file did before it
    if upgraded["backing"] == "write-file" and "write_buffer_bytes" not in stored:
        upgraded["write_buffer_bytes"] = WHOLE_WRITE_BUFFER  # what write-file did before it
    return upgraded


def id_defaults(backing: Value) -> Mapping[str, Value]:
    """The value of each parameter that Scenario.id leaves out, by spec key: its default, but
    for read-file's read_buffer and write-file's write_buffer `whole`, so scenarios stored
    before those existed (which read or wrote the whole block) keep their ids, and those with
    a reused buffer, which measure something else, get new ones."""
    if backing == "read-file":
        return {**DEFAULTS, "read_buffer": WHOLE_READ_BUFFER}
    if backing == "write-file":
        return {**DEFAULTS, "write_buffer": WHOLE_WRITE_BUFFER}
    return DEFAULTS
