"""A markdown table that fits a terminal: aligned columns, at most `WIDTH` characters a line.

The same text is printed and saved as `summary.md`, so it reads as a table in a terminal and renders as one.
Columns are given most important first; those that do not fit are left out from the end (the caller keeps
the first `keep`) and named below the table, and a long cell is cut in its middle.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

WIDTH = 120  # a normal terminal; every line of a sweep's printed summary fits
MIN_CELL = 8  # a cell cut shorter than this says too little
MAX_VALUE = 40  # an override's value in a sentence (a CSV's path), cut in its middle beyond this


@dataclass(frozen=True)
class Column:
    name: str
    cells: list[str]
    numeric: bool = False  # right-aligned


def render(columns: list[Column], keep: int = 1, left_out_note: str = "") -> list[str]:
    """The table's lines, fitted to `WIDTH`: columns after the first `keep` are dropped from the end, then the
    widest cells are cut, until every line fits; a line after the table names the columns left out (with
    `left_out_note`)."""
    shown = list(columns)
    while _width(shown) > WIDTH and len(shown) > keep:
        shown.pop()
    limit = max((len(cell) for column in shown for cell in [column.name, *column.cells]), default=0)
    while _width(shown) > WIDTH and limit > MIN_CELL:
        limit -= 1
        shown = [_cut(column, limit) for column in shown]
    while _width(shown) > WIDTH and len(shown) > 1:  # more kept columns than any width holds
        shown.pop()
    lines = _lines(shown)
    left_out = [column.name for column in columns[len(shown) :]]
    if left_out:
        note = f"not shown here: {', '.join(left_out)}{left_out_note}"
        lines += textwrap.wrap(note, WIDTH, break_on_hyphens=False)
    return lines


def wrap(text: str) -> list[str]:
    """A sentence of the summary, wrapped to `WIDTH` with its continuation lines indented."""
    return textwrap.wrap(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False) or [""]


def short_value(value: str) -> str:
    """An override's value as the summary shows it: a float with many digits (an Optuna trial's lr) rounded to
    4 significant digits, a long value (a path) cut in its middle."""
    try:
        number = float(value)
    except ValueError:
        return _shorten(value, MAX_VALUE)
    return f"{number:.4g}" if len(value) > 8 and math.isfinite(number) else _shorten(value, MAX_VALUE)


def _lines(columns: list[Column]) -> list[str]:
    widths = [max(len(cell) for cell in [column.name, *column.cells]) for column in columns]
    rows = zip(*(column.cells for column in columns), strict=True) if columns else []

    def line(cells: list[str] | tuple[str, ...], header: bool = False) -> str:
        aligned = [
            cell.rjust(width) if column.numeric and not header else cell.ljust(width)
            for cell, width, column in zip(cells, widths, columns, strict=True)
        ]
        return "| " + " | ".join(aligned) + " |"

    ends = [":" if column.numeric else "-" for column in columns]  # markdown's right alignment
    rule = "|" + "|".join("-" * (width + 1) + end for width, end in zip(widths, ends, strict=True)) + "|"
    return [line([column.name for column in columns], header=True), rule, *(line(row) for row in rows)]


def _width(columns: list[Column]) -> int:
    return max((len(line) for line in _lines(columns)), default=0)


def _cut(column: Column, limit: int) -> Column:
    return Column(_shorten(column.name, limit), [_shorten(cell, limit) for cell in column.cells], column.numeric)


def _shorten(text: str, limit: int) -> str:
    """`a_long_value` as `a_l…lue`: the start and the end tell most values apart."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]
