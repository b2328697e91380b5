"""The NIST Statistical Reference Datasets (StRD) for linear least squares: reading a set's file, its certified
values and its data, as the features its model names, and writing it as a CSV for `data=csv`.

The suite (https://www.itl.nist.gov/div898/strd/lls/lls.shtml, public domain) is the field's accepted test of
whether a regression program gets the numbers right: a program is judged by the correct digits it reaches on
each coefficient (`correct_digits`, NIST's log relative error). Each file states in its header the lines of its
certified values and of its data block; its model line names the parameters B0 (the intercept, absent for a
fit through the origin), B1, ..., Bk. A set with one predictor x and more than one slope is a polynomial: its
features are the powers x, x², ..., xᵏ (Pontius, Filip, Wampler1-5); otherwise Bi multiplies the i-th predictor
(Norris, NoInt1-2, Longley).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linreg.errors import InvalidInput

# The most digits a certified value (15 significant) can confirm: NIST caps the log relative error there.
MAX_DIGITS = 15.0


@dataclass(frozen=True)
class ReferenceSet:
    """One StRD linear set: its certified coefficients and its data as features (N, k) and target (N,)."""

    name: str
    difficulty: str  # NIST's rating: Lower, Average or Higher
    certified: dict[str, float]  # "B0" (when the model has an intercept), "B1", ..., "Bk"
    residual_standard_deviation: float
    r_squared: float
    features: list[str]  # the CSV's column names: x1, x2, ... or x, x^2, ..., x^k
    x: np.ndarray
    y: np.ndarray

    @property
    def intercept(self) -> bool:
        return "B0" in self.certified

    @property
    def certified_weight(self) -> list[float]:
        """B1, ..., Bk: the weight of each feature, in `features`' order."""
        return [self.certified[f"B{i}"] for i in range(1, len(self.features) + 1)]

    def write_csv(self, path: Path) -> Path:
        """The features, then the target `y` (last: `data=csv` takes it as the target), every number exact
        (repr round-trips a float64)."""
        rows = [",".join([*self.features, "y"])]
        rows += [",".join(repr(float(v)) for v in [*row, target]) for row, target in zip(self.x, self.y, strict=True)]
        path.write_text("\n".join(rows) + "\n")
        return path


def read(path: Path) -> ReferenceSet:
    """The StRD linear set in `path` (one of NIST's `.dat` files, as published)."""
    lines = Path(path).read_text().splitlines()
    header = "\n".join(lines[:30])
    name = _search(r"Dataset Name:\s*(\S+)", header, path, "a 'Dataset Name:' line")
    difficulty = _search(r"(Lower|Average|Higher) Level of Difficulty", header, path, "a level of difficulty")
    first, last = map(int, _search(r"Certified Values\s*\(lines (\d+) to (\d+)\)", header, path, "", groups=2))
    certified_lines = lines[first - 1 : last]
    certified = {
        match[1]: float(match[2])
        for match in (re.match(r"\s*(B\d+)\s+(\S+)\s+\S+\s*$", line) for line in certified_lines)
        if match
    }
    body = "\n".join(certified_lines)
    residual_sd = float(_search(r"Standard Deviation\s+(\S+)\s*$", body, path, "a residual standard deviation"))
    r_squared = float(_search(r"R-Squared\s+(\S+)", body, path, "an R-Squared line"))
    first, last = map(int, _search(r"Data\s*\(lines (\d+) to (\d+)\)", header, path, "", groups=2))
    columns = lines[first - 2].split(":", 1)[-1].split()  # "Data:  y  x1  x2": the line above the block
    table = np.array([[float(cell) for cell in line.split()] for line in lines[first - 1 : last]], ndmin=2)
    if not certified or columns[:1] != ["y"] or table.shape[1] != len(columns):
        raise InvalidInput(f"{path}: no StRD linear set (certified values, then 'Data: y x...' and its rows)")
    y, predictors = table[:, 0], table[:, 1:]
    slopes = len(certified) - ("B0" in certified)
    if predictors.shape[1] == slopes:
        features, x = columns[1:], predictors
    elif predictors.shape[1] == 1:  # a polynomial in x: B1*x + B2*(x**2) + ...
        features = ["x", *(f"x^{power}" for power in range(2, slopes + 1))]
        x = predictors ** np.arange(1, slopes + 1)
    else:
        raise InvalidInput(f"{path}: {slopes} slopes for {predictors.shape[1]} predictors; expected one each")
    return ReferenceSet(name, difficulty, certified, residual_sd, r_squared, features, x, y)


def _search(pattern: str, text: str, path: Path, what: str, groups: int = 1) -> str | tuple[str, ...]:
    match = re.search(pattern, text, re.M)
    if not match:
        raise InvalidInput(f"{path}: no {what or pattern} in its header; expected a NIST StRD linear set")
    return match.group(1) if groups == 1 else match.groups()


def correct_digits(estimate: float, certified: float) -> float:
    """NIST's log relative error, -log10(|estimate - certified| / |certified|) (absolute where the certified
    value is 0): how many leading digits agree, from 0 (none, or not finite) to MAX_DIGITS."""
    if not math.isfinite(estimate):
        return 0.0
    error = abs(estimate - certified) / (abs(certified) if certified else 1.0)
    return MAX_DIGITS if error == 0 else min(MAX_DIGITS, max(0.0, -math.log10(error)))


def digits_reached(reference: ReferenceSet, weight: list[float], bias: float | None) -> dict[str, float]:
    """The correct digits of each coefficient, by its NIST name (B0 the bias, when the model has one)."""
    reached = dict(zip([f"B{i}" for i in range(1, len(weight) + 1)], weight, strict=True))
    if reference.intercept:
        reached["B0"] = math.nan if bias is None else bias
    return {name: correct_digits(reached[name], value) for name, value in reference.certified.items()}
