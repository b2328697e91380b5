"""The Longley data (tests/data/longley.csv), NIST's classic test of least-squares accuracy, trained by gradient
descent through the command of docs/hard-cases.md and held to NIST's certified coefficients.

The data: statsmodels' copy (statsmodels/datasets/longley/longley.csv, public domain), its index column
dropped and the target TOTEMP moved last; see tests/data/README.md.
"""

import shutil

import numpy as np
import pytest
from conftest import REPO, read_json, run_command
from readme import README_COMMANDS, README_PAGES, shown_output

LONGLEY = REPO / "tests" / "data" / "longley.csv"
(COMMAND,) = [c for c in README_COMMANDS if "longley.csv" in c]  # docs/hard-cases.md, "Longley"
PAGE = " ".join(README_PAGES["docs/hard-cases.md"].split())  # its prose, one line

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
    assert np.linalg.cond(design) == pytest.approx(4.86e9, rel=0.01) and "about 4.9e9" in PAGE
    assert np.linalg.cond(design) ** 2 == pytest.approx(2.4e19, rel=0.02) and "about 2.4e19" in PAGE


def test_why_plain_gradient_descent_is_slow_and_momentum_is_not():
    """The page's figures for the standardized design: its Hessian's condition number, the steps per e-fold at
    the largest stable lr, and how far plain gradient descent (no momentum) still is after 20000 steps."""
    table = np.loadtxt(LONGLEY, delimiter=",", skiprows=1)
    x, y = table[:, :6], table[:, 6]
    mean, std = x.mean(0), x.std(0)
    design = np.hstack([(x - mean) / std, np.ones((16, 1))])
    target = (y - y.mean()) / y.std()
    assert np.linalg.cond(design) == pytest.approx(110.5, abs=0.1) and "condition number is about 110" in PAGE
    eigenvalues = np.linalg.eigvalsh(2 / 16 * design.T @ design)
    assert eigenvalues[-1] / eigenvalues[0] == pytest.approx(1.2e4, rel=0.03) and "about 1.2e4" in PAGE
    efold = eigenvalues[-1] / (2 * eigenvalues[0])  # 1 / (lr * lambda_min) at lr = 2 / lambda_max
    assert efold == pytest.approx(6000, rel=0.05) and "about 6000 steps per e-fold" in PAGE
    certified = np.array([*CERTIFIED_WEIGHTS.values(), CERTIFIED_INTERCEPT])
    off = {}
    for lr in (0.15, 0.2):
        theta = np.zeros(7)
        for _ in range(20000):
            theta -= lr * 2 / 16 * design.T @ (design @ theta - target)
        weights = theta[:6] * y.std() / std
        reached = np.append(weights, theta[6] * y.std() + y.mean() - weights @ mean)
        off[lr] = np.abs(reached / certified - 1).max()
    assert round(off[0.15], 1) == 0.6 and round(off[0.2], 1) == 0.3
    assert "lr 0.15 and 0.2 without momentum are still 60% and 30% off after 20000 steps" in PAGE


@pytest.mark.e2e
@pytest.mark.slow
def test_the_readme_command_reaches_nists_certified_coefficients(tmp_path):
    (tmp_path / "tests" / "data").mkdir(parents=True)
    shutil.copy(LONGLEY, tmp_path / "tests" / "data" / "longley.csv")
    result = run_command([*COMMAND.split()[1:], f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    assert shown_output(COMMAND)[0] in result.stdout.splitlines()  # the w and b the page shows
    record = read_json(tmp_path / "run" / "results.json")
    assert (record["status"], record["steps"], record["batch_size"]) == ("ok", 5000, 16)  # all 16 rows
    assert record["standardize"] is True and record["condition_number"] == pytest.approx(110.5, abs=0.1)
    assert not {"val_mse", "val_r2"} & record.keys()  # no rows held out: no validation metrics
    reached = [record["bias"][0], *record["weight"][0]]
    certified = [CERTIFIED_INTERCEPT, *CERTIFIED_WEIGHTS.values()]
    relative = [abs(r / c - 1) for r, c in zip(reached, certified, strict=True)]
    assert max(relative) <= 1e-6, dict(zip(["intercept", *CERTIFIED_WEIGHTS], relative, strict=True))
    assert f"is {max(relative):.1e}".replace("e-0", "e-") in PAGE  # the largest relative error the page states
