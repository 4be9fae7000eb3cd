"""The one table formatter: values to cells, rows of dicts to a GitHub-flavoured markdown table."""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

MISSING = "—"


def format_value(v, spec: str = ".4g", nan: str | None = None) -> str:
    """One table cell. ``None`` → ``—``; bools, ints and strings as they are; floats by ``spec``
    (a format spec such as ``.4g``, or ``"sig3"``: three significant digits below 0.01, else three
    decimals); NaN as ``nan`` unless another text is given, ±inf as ``inf``/``-inf``."""
    if v is None:
        return MISSING
    if isinstance(v, bool) or not isinstance(v, (int, float)) or isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return nan if (nan is not None and math.isnan(v)) else str(v)
    if spec == "sig3":
        return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"
    return format(v, spec)


def format_pm(mean, sd, spec: str = ".4g") -> str:
    """``"mean ± sd"``, the sd with the mean's decimals (``—`` for a missing or non-finite mean)."""
    if mean is None or not math.isfinite(mean):
        return MISSING
    if sd is None or not math.isfinite(sd):
        return format_value(mean, spec)
    sd_spec = ".3f" if spec == "sig3" and (abs(mean) >= 1e-2 or mean == 0) else spec
    return f"{format_value(mean, spec)} ± {format_value(sd, sd_spec)}"


Column = tuple  # (header, key) or (header, key, spec)


def markdown_table(rows: Sequence[Mapping], columns: Sequence[Column], spec: str = ".4g",
                   nan: str | None = None, first_left: bool = True,
                   cell: Callable[[Mapping, str], object] | None = None) -> str:
    """``rows`` as a markdown table with one column per ``(header, key[, spec])``.

    Values are looked up with ``cell(row, key)`` (default ``row.get(key)``) and formatted by
    :func:`format_value` with the column's ``spec`` (else ``spec``). Number columns are right
    aligned; with ``first_left`` the first column (a name) is left aligned.
    """
    if not rows:
        return ""
    get = cell or (lambda row, key: row.get(key))
    heads = [c[0] for c in columns]
    align = [("---" if first_left and i == 0 else "---:") for i in range(len(columns))]
    lines = ["| " + " | ".join(heads) + " |", "| " + " | ".join(align) + " |"]
    for row in rows:
        cells = [format_value(get(row, c[1]), c[2] if len(c) > 2 else spec, nan) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
