"""The Longley data (tests/data/longley.csv), NIST's classic test of least-squares accuracy, trained by gradient
descent through the README's command and held to NIST's certified coefficients.

The data: statsmodels' copy (statsmodels/datasets/longley/longley.csv, public domain), its index column
dropped and the target TOTEMP moved last; see tests/data/README.md.
"""

import shutil

import numpy as np
import pytest
from conftest import REPO, read_json, run_command
from readme import README_COMMANDS

pytestmark = pytest.mark.slow

LONGLEY = REPO / "tests" / "data" / "longley.csv"
(COMMAND,) = [c for c in README_COMMANDS if "longley.csv" in c]  # the README's "A hard case: Longley"

# NIST StRD, Longley: https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml (certified values)
CERTIFIED_INTERCEPT = -3482258.63459582
CERTIFIED_WEIGHTS = {  # in the file's column order
    "GNPDEFL": 15.0618722713733,
    "GNP": -0.0358191792925910,
    "UNEMP": -2.02022980381683,
    "ARMED": -1.03322686717359,
    "POP": -0.0511041056535807,
    "YEAR": 1829.15146461355,
}


def test_the_data_is_longleys():
    header = LONGLEY.read_text().splitlines()[0].split(",")
    table = np.loadtxt(LONGLEY, delimiter=",", skiprows=1)
    assert header == [*CERTIFIED_WEIGHTS, "TOTEMP"] and table.shape == (16, 7)
    assert table[0].tolist() == [83, 234289, 2356, 1590, 107608, 1947, 60323]
    design = np.hstack([table[:, :6], np.ones((16, 1))])
    assert np.linalg.cond(design) == pytest.approx(4.86e9, rel=0.01)  # the README's "about 4.9e9"


def test_the_readme_command_reaches_nists_certified_coefficients(tmp_path):
    (tmp_path / "tests" / "data").mkdir(parents=True)
    shutil.copy(LONGLEY, tmp_path / "tests" / "data" / "longley.csv")
    result = run_command([*COMMAND.split()[1:], f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    assert (record["status"], record["steps"], record["batch_size"]) == ("ok", 5000, 16)  # all 16 rows
    assert record["standardize"] is True and record["condition_number"] == pytest.approx(110.5, abs=0.1)
    assert not {"val_mse", "val_r2"} & record.keys()  # no rows held out: no validation metrics
    reached = [record["bias"][0], *record["weight"][0]]
    certified = [CERTIFIED_INTERCEPT, *CERTIFIED_WEIGHTS.values()]
    relative = [abs(r / c - 1) for r, c in zip(reached, certified, strict=True)]
    assert max(relative) <= 1e-6, dict(zip(["intercept", *CERTIFIED_WEIGHTS], relative, strict=True))
