"""The NIST StRD linear least-squares suite (tests/data/nist/, NIST's files as published): the reader of the
format, whitening and the regression through the origin checked in-process against numpy, and every set
trained by the real command (through docs/nist.md's `python scripts/nist_suite.py`, which runs
`python scripts/train.py ...` per set) and held to NIST's certified coefficients."""

import re

import numpy as np
import pytest
import torch
from conftest import REPO, read_json, run_command
from readme import README_PAGES

from linreg import least_squares, nist
from linreg.data import RegressionDataModule
from linreg.errors import InvalidInput
from linreg.models import LinearRegression
from linreg.record import _learned_line
from linreg.sources import SeedData, Split, Splits
from linreg.standardization import Standardization

SETS = REPO / "tests" / "data" / "nist"
NAMES = ["Norris", "Pontius", "NoInt1", "Filip", "Longley"]
ONE_WORKER = pytest.mark.xdist_group("nist")  # the tests that share the suite's run
# The command of the issue and of docs/nist.md, but for the CSV's path (and model.bias=false without intercept)
COMMAND = (
    "data=csv data.source.val_fraction=0 data.source.test_fraction=0 +trainer.precision=64-true "
    "data.standardize=whiten lr=0.5 iters=200"
)


def _read(name: str) -> nist.ReferenceSet:
    return nist.read(SETS / f"{name}.dat")


def _tensors(reference: nist.ReferenceSet) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(reference.x), torch.from_numpy(reference.y).unsqueeze(1)


# --- the reader ------------------------------------------------------------------------------------------------


def test_the_reader_takes_the_certified_values_and_the_features_the_model_names():
    filip, longley, noint = _read("Filip"), _read("Longley"), _read("NoInt1")
    assert filip.certified["B0"] == -1467.48961422980 and filip.certified["B10"] == -0.402962525080404e-04
    assert filip.features == ["x", *(f"x^{k}" for k in range(2, 11))] and filip.x.shape == (82, 10)
    np.testing.assert_array_equal(filip.x[:, 9], filip.x[:, 0] ** 10)  # the powers of x, as the model line says
    assert (filip.y[0], filip.x[0, 0], filip.y[-1]) == (0.8116, -6.860120914, 0.9228)  # first and last data rows
    assert filip.difficulty == "Higher" and filip.r_squared == 0.996727416185620
    assert longley.features == [f"x{i}" for i in range(1, 7)] and longley.x[0].tolist() == [83, 234289, 2356, 1590,
                                                                                           107608, 1947]  # fmt: skip
    assert longley.certified["B0"] == -3482258.63459582 and longley.intercept
    assert not noint.intercept and noint.certified == {"B1": 2.07438016528926} and noint.x.shape == (11, 1)
    assert noint.residual_standard_deviation == 3.56753034006338
    assert [_read(name).difficulty for name in NAMES] == ["Lower", "Lower", "Average", "Higher", "Higher"]


def _wampler1(path):
    """A set in the StRD layout the five files do not cover: a degree-5 polynomial (NIST's Wampler1: y = 1 + x +
    x^2 + ... + x^5 on x = 0..20, exactly, every coefficient certified 1)."""
    lines = ["NIST/ITL StRD", "Dataset Name:  Wampler1 (Wampler1.dat)", "", "File Format:   ASCII",
             "               Certified Values  (lines 31 to 51)", "               Data              (lines 61 to 81)",
             "", "Procedure:     Linear Least Squares Regression", "", "Data:          1 Response Variable (y)",
             "               1 Predictor Variable (x)", "               21 Observations",
             "               Lower Level of Difficulty", "               Generated Data", "",
             "Model:         Polynomial Class", "               6 Parameters (B0,B1,...,B5)", "",
             "               y = B0 + B1*x + B2*(x**2) + B3*(x**3) + B4*(x**4) + B5*(x**5)"]  # fmt: skip
    lines += [""] * (26 - len(lines)) + ["               Certified Regression Statistics", "", "  Standard Deviation",
                                         "     Parameter         Estimate              of Estimate", ""]  # fmt: skip
    lines += [f"        B{i}        1.00000000000000         0.00000000000000" for i in range(6)]
    lines += ["", "     Residual", "     Standard Deviation   0.00000000000000", "", "     R-Squared   1.00000"]
    lines += [""] * (59 - len(lines)) + ["Data:       y          x"]
    lines += [f"  {sum(x**k for k in range(6))}  {x}" for x in range(21)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_reader_takes_any_strd_linear_set_and_its_csv_is_exact(tmp_path):
    wampler = nist.read(_wampler1(tmp_path / "Wampler1.dat"))
    assert wampler.certified == {f"B{i}": 1.0 for i in range(6)} and wampler.features[-1] == "x^5"
    best = least_squares.optimum(*_tensors(wampler))
    assert min(nist.digits_reached(wampler, best.weight[0], best.bias[0]).values()) > 8
    filip = _read("Filip")
    table = np.loadtxt(filip.write_csv(tmp_path / "filip.csv"), delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table, np.column_stack([filip.x, filip.y]))  # every float64 as it was


def test_a_file_that_is_no_strd_set_is_one_clear_error(tmp_path):
    path = tmp_path / "not.dat"
    path.write_text("Dataset Name:  x\nHigher Level of Difficulty\n")
    with pytest.raises(InvalidInput, match="expected a NIST StRD linear set"):
        nist.read(path)


def test_correct_digits_is_nists_log_relative_error():
    assert nist.correct_digits(1.0001, 1.0) == pytest.approx(4.0)
    certified = -3482258.63459582
    assert nist.correct_digits(-3482258.63, certified) == pytest.approx(-np.log10(4.59582e-3 / -certified))
    assert nist.correct_digits(2.0, 2.0) == nist.MAX_DIGITS and nist.correct_digits(5.0, 1.0) == 0.0
    assert nist.correct_digits(float("nan"), 1.0) == 0.0


# --- whitening and the regression through the origin, against numpy ---------------------------------------------


def test_whitened_inputs_have_unit_variance_orthogonal_columns_and_the_weights_map_back_to_lstsq():
    rng = np.random.default_rng(3)
    x = rng.normal([5.0, -2.0, 100.0], [1.0, 0.1, 30.0], size=(200, 3))
    x[:, 2] += 50 * x[:, 0]  # correlated columns: standardizing alone leaves them so
    y = x @ [[1.5], [-4.0], [0.02]] + 7 + rng.normal(0, 0.1, (200, 1))
    xt, yt = torch.tensor(x), torch.tensor(y)
    whitened = Standardization.of(xt, yt, whiten=True)
    u = whitened.inputs(xt)
    np.testing.assert_allclose(u.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(u.T @ u / 200, np.eye(3), atol=1e-12)
    assert least_squares.condition_number(u) == pytest.approx(1.0, abs=1e-10)
    best = least_squares.optimum(u, whitened.targets(yt))  # in whitened units: what gradient descent reaches
    weight, bias = whitened.linear_in_original_units(
        torch.tensor(best.weight, dtype=torch.float64), torch.tensor(best.bias, dtype=torch.float64)
    )
    expected = np.linalg.lstsq(np.hstack([x, np.ones((200, 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(weight[0], expected[:3, 0], rtol=1e-10)
    assert float(bias[0]) == pytest.approx(expected[3, 0], rel=1e-10)


def test_whitening_reaches_filips_certified_digits_where_standardizing_leaves_it_ill_conditioned():
    filip = _read("Filip")
    x, y = _tensors(filip)
    standardized, whitened = Standardization.of(x, y), Standardization.of(x, y, whiten=True)
    assert least_squares.condition_number(standardized.inputs(x)) == pytest.approx(3.8e9, rel=0.01)
    assert least_squares.condition_number(whitened.inputs(x)) == pytest.approx(1.0, abs=1e-5)
    best = least_squares.optimum(whitened.inputs(x), whitened.targets(y))
    weight, bias = whitened.linear_in_original_units(
        torch.tensor(best.weight, dtype=torch.float64), torch.tensor(best.bias, dtype=torch.float64)
    )
    assert min(nist.digits_reached(filip, weight[0].tolist(), float(bias[0])).values()) >= 7


def test_a_regression_through_the_origin_is_scaled_not_centred_and_its_optimum_has_no_intercept():
    noint = _read("NoInt1")
    x, y = _tensors(noint)
    scaled = Standardization.of(x, y, centre=False, whiten=True)
    assert scaled.x_mean.tolist() == [0.0] and scaled.y_mean.tolist() == [0.0]
    assert scaled.x_scale.item() == pytest.approx(np.sqrt(np.mean(noint.x**2)))  # root mean square
    best = least_squares.optimum(scaled.inputs(x), scaled.targets(y), intercept=False)
    assert best.bias == [0.0]
    weight, bias = scaled.linear_in_original_units(torch.tensor(best.weight, dtype=torch.float64), None)
    assert bias is None and nist.correct_digits(weight.item(), noint.certified["B1"]) >= 12
    expected = np.linalg.lstsq(noint.x, noint.y, rcond=None)[0][0]
    assert least_squares.optimum(x, y, intercept=False).weight[0][0] == pytest.approx(expected, rel=1e-13)
    assert least_squares.condition_number(x, intercept=False) == 1.0  # one column, no column of ones
    assert least_squares.stability_limit(x, intercept=False) == pytest.approx(1 / np.mean(noint.x**2))


def test_the_whitening_travels_in_the_state_dict_and_older_ones_load():
    x, y = _tensors(_read("Longley"))
    whitened = Standardization.of(x, y, whiten=True)
    loaded = Standardization()  # as a model built from its hyperparameters starts
    loaded.load_state_dict(whitened.state_dict())
    assert torch.equal(loaded.inputs(x), whitened.inputs(x)) and loaded.whitened
    older = {k: v for k, v in Standardization.of(x, y).state_dict().items() if k != "x_whitening"}
    loaded.load_state_dict(older)  # a checkpoint from before whitening: standardized only
    assert not loaded.whitened and torch.equal(loaded.inputs(x), Standardization.of(x, y).inputs(x))


def test_whitening_refuses_linearly_dependent_columns():
    x = torch.tensor([[1.0, 2.0, 7.0], [2.0, 4.0, 7.0], [3.0, 6.5, 7.0], [4.0, 8.0, 7.0]], dtype=torch.float64)
    with pytest.raises(InvalidInput, match=r"data\.standardize: whiten needs linearly independent training columns"):
        Standardization.of(x, x[:, :1], whiten=True)  # column 3 is constant


@pytest.mark.parametrize("value", ["yes", 1, "whitened"])
def test_data_standardize_takes_true_false_or_whiten(value):
    message = f"data.standardize: {value!r} is not allowed; expected true, false or whiten"
    with pytest.raises(InvalidInput, match=re.escape(message)):
        RegressionDataModule(SeedData(), standardize=value)


def test_the_datamodule_whitens_the_training_split_and_serves_every_split_so():
    filip = _read("Filip")
    x, y = _tensors(filip)
    splits = Splits(Split(x[:60], y[:60]), Split(x[60:], y[60:]), Split(x[:0], y[:0]))
    datamodule = RegressionDataModule(type("Given", (), {"name": "given", "load": lambda self: splits})(), None,
                                      standardize="whiten")  # fmt: skip
    served = datamodule.served.train.x.double()
    np.testing.assert_allclose(served.T @ served / 60, np.eye(10), atol=1e-5)  # float32, as served by default
    expected = Standardization.of(x[:60], y[:60], whiten=True).inputs(x[60:])
    np.testing.assert_allclose(datamodule.served.val.x, expected, rtol=1e-4, atol=1e-4)


def test_a_linear_model_without_bias_has_none_to_report():
    model = LinearRegression(1, 1, bias=False)
    assert model.network.bias is None and set(model.learned_parameters()) == {"weight"}
    with pytest.raises(InvalidInput, match=r"model\.bias: 'no' is not allowed; expected true or false"):
        LinearRegression(1, 1, bias="no")


def test_printed_coefficients_keep_seven_significant_digits_but_the_notebooks_three_decimals():
    longley = {"data": "csv:longley.csv", "status": "ok", "weight": [[15.0618722713733, -0.0358191792925910]],
               "bias": [-3482258.63459582]}  # fmt: skip
    assert _learned_line(longley) == "w = [15.06187, -0.03581918], b = -3482258.635"
    assert _learned_line({**longley, "data": "seed", "weight": [[1.9999999]], "bias": [1.2e-7]}) == (
        "w = 2.000, b = 0.000"
    )
    noint = {"data": "csv:noint1.csv", "status": "ok", "weight": [[2.07438016528926]]}
    assert _learned_line(noint) == "w = 2.074380, no bias (model.bias=false)"
    for value in (4.02962525080404e-05, 3.3e17, -7.1e-9):
        printed = _learned_line({**noint, "weight": [[value]]}).split(" = ")[1].split(",")[0]
        assert float(printed) == pytest.approx(value, rel=1e-6)


# --- every set through the real command -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """docs/nist.md's command, once: each set as a CSV, trained by scripts/train.py; the table and the records."""
    cwd = tmp_path_factory.mktemp("nist")
    result = run_command(["scripts/nist_suite.py", "--out", "suite"], cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout, {name: read_json(cwd / "suite" / name / "run" / "results.json") for name in NAMES}, cwd


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_command_reaches_nists_certified_digits(suite, name):
    _, records, _ = suite
    record, reference = records[name], _read(name)
    expected = dict(override.split("=", 1) for override in COMMAND.split())
    expected["data.source.path"] = f"suite/{name}/{name}.csv"  # as the suite was given its --out
    if not reference.intercept:
        expected["model.bias"] = "false"
    assert {k: v for k, v in record["overrides"].items() if not k.startswith("hydra.")} == expected
    assert record["status"] == "ok" and record["steps"] == 200 and record["batch_size"] == len(reference.y)
    assert record["condition_number"] == pytest.approx(1.0, abs=1e-5)  # what gradient descent saw, whitened
    assert ("bias" in record) == ("optimum_bias" in record) == reference.intercept
    trained = nist.digits_reached(reference, record["weight"][0], record.get("bias", [None])[0])
    optimum = nist.digits_reached(reference, record["optimum_weight"][0], record.get("optimum_bias", [None])[0])
    assert min(trained.values()) >= 6, trained
    assert min(optimum.values()) >= 7, optimum


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.slow
def test_the_pages_table_is_the_suites(suite):
    """docs/nist.md's table, row for row, against a new run: the digits to within half a digit (another machine's
    arithmetic may differ in the last place), the rest as printed; times are not compared."""
    printed, _, _ = suite
    page = README_PAGES["docs/nist.md"]
    ran, shown = (re.findall(r"^\| (\w+) \|.*\|$", text, re.M) for text in (printed, page))
    assert ran[1:] == shown[1:] == NAMES  # the header row first: its first cell is "set"
    for name in NAMES:
        ran_cells, shown_cells = ([c.strip() for c in re.search(rf"^\| {name} \|(.*)\|$", text, re.M)[1].split("|")]
                                  for text in (printed, page))  # fmt: skip
        assert ran_cells[:5] == shown_cells[:5] and ran_cells[7] == shown_cells[7]
        for column in (5, 6):
            assert float(ran_cells[column]) == pytest.approx(float(shown_cells[column]), abs=0.5), name


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.slow
def test_predict_takes_raw_inputs_of_a_whitened_run(suite):
    _, _, cwd = suite
    longley = _read("Longley")
    rows = [",".join(f"{v:g}" for v in longley.x[i]) for i in (0, 15)]
    result = run_command(["scripts/predict.py", str(cwd / "suite" / "Longley" / "run"), *rows], cwd=cwd)
    assert result.returncode == 0, result.stderr
    printed = [float(line.split(" = ")[1]) for line in result.stdout.splitlines()]
    certified = [longley.certified["B0"] + longley.x[i] @ longley.certified_weight for i in (0, 15)]
    np.testing.assert_allclose(printed, certified, rtol=1e-5)  # the model computes in float32 here
