"""Names that become folder names, page names and links: experiment names, machine labels and
run ids. One strict pattern each, so a name from a spec, the command line, the environment or
a results folder copied from elsewhere can never leave its folder (no separator, no dot-dot,
no leading dot or dash), break a link (no ':' for `javascript:`), or hide a newline."""

from __future__ import annotations

import re

MAX_NAME_CHARS = 64
# JSON Schema spelling too (runner.spec.schema): `$` there matches only at the very end; Python's
# fullmatch gives the same meaning.
EXPERIMENT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
EXPERIMENT_HINT = ("lowercase letters, digits and '-', starting with a letter or digit, "
                   f"at most {MAX_NAME_CHARS} characters")
LABEL_HINT = ("letters, digits, '.', '_' and '-', starting with a letter or digit, at most "
              f"{MAX_NAME_CHARS} characters, no '..'")


def is_experiment_name(text: object) -> bool:
    return isinstance(text, str) and re.fullmatch(EXPERIMENT_PATTERN, text) is not None


def is_label(text: object) -> bool:
    """A machine label or run id: one plain path component."""
    return (isinstance(text, str) and re.fullmatch(LABEL_PATTERN, text) is not None
            and ".." not in text)


def label_from_host(host: str) -> str:
    """A host name made into a label: other characters become '-', at most MAX_NAME_CHARS."""
    label = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in host)
    label = re.sub(r"\.{2,}", ".", label).lstrip("-_.")[:MAX_NAME_CHARS]
    return label if is_label(label) else "machine"
