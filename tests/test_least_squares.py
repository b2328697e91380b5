"""The best possible fit and the stability limit, against numbers computed here with numpy, and what a
full-batch run does just below and just above the limit."""

import numpy as np
import pytest
import torch
from conftest import read_json, train_command

from linreg import least_squares
from linreg.least_squares import mse, optimum, parameter_distance, stability_limit
from linreg.sources import CsvData

NOTEBOOK_X = np.array([[1.0], [2.0], [3.0], [4.0]])


def notebook_eigenvalues() -> np.ndarray:
    with_ones = np.hstack([NOTEBOOK_X, np.ones((4, 1))])
    return np.linalg.eigvals((2 / 4) * with_ones.T @ with_ones)


def test_the_limit_on_the_notebooks_data_is_2_over_the_largest_eigenvalue():
    largest = max(notebook_eigenvalues().real)
    assert largest == pytest.approx(16.70, abs=0.005)
    x = torch.tensor(NOTEBOOK_X, dtype=torch.float32)
    assert stability_limit(x) == pytest.approx(2 / largest, rel=1e-9)
    assert stability_limit(x) == pytest.approx(0.1198, abs=5e-5)
    assert stability_limit(x, momentum=0.9) == pytest.approx(2 * 1.9 / largest, rel=1e-9)
    assert stability_limit(x, weight_decay=0.5) == pytest.approx(2 / (largest + 0.5), rel=1e-9)


def test_the_optimum_of_exact_data_is_exact():
    x = torch.tensor(NOTEBOOK_X, dtype=torch.float32)
    best = optimum(x, 2 * x)
    assert best.weight == [[pytest.approx(2.0, abs=1e-12)]]
    assert best.bias == [pytest.approx(0.0, abs=1e-12)]
    assert best.mse == pytest.approx(0.0, abs=1e-20)
    assert parameter_distance([[2.0]], [0.5], best) == pytest.approx(0.5, abs=1e-12)


def unscaled_data(n=53, seed=5):
    """Inputs of different scales, none centred, and two targets with non-zero intercepts and noise: the data on
    which a wrong bias or a lost block shows (y = 2x or centred data has the true bias 0)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [3.0, -20.0, 0.5]
    weight = np.array([[1.5, -0.3, 4.0], [-2.0, 0.05, 1.0]])
    target = features @ weight.T + [7.0, -3.0] + rng.normal(scale=0.5, size=(n, 2))
    return torch.tensor(features, dtype=torch.float32), torch.tensor(target, dtype=torch.float32)


def with_ones(x: torch.Tensor) -> np.ndarray:
    return np.hstack([x.double().numpy(), np.ones((len(x), 1))])


# 53 rows in blocks of 8: seven blocks, the last of 5 rows, fewer than the 3 + 1 + 2 columns of [x, 1, y];
# blocks of 1: one row at a time; 65536: the module's own, one block
BLOCKS = [8, 1, least_squares.BLOCK]


@pytest.mark.parametrize("block", BLOCKS)
def test_the_blockwise_optimum_is_numpys_lstsq_of_all_the_rows(monkeypatch, block):
    monkeypatch.setattr(least_squares, "BLOCK", block)
    x, y = unscaled_data()
    design, targets = with_ones(x), y.double().numpy()
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)  # (3 + 1, 2)
    best = optimum(x, y)
    np.testing.assert_allclose(best.weight, solution[:-1].T, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(best.bias, solution[-1], rtol=1e-9, atol=1e-9)
    assert np.abs(solution[-1]).min() > 1  # the intercepts are far from 0: a lost column of ones shows
    assert best.mse == pytest.approx(np.mean((design @ solution - targets) ** 2), rel=1e-9)
    assert best.mse == pytest.approx(0.25, rel=0.3)  # the noise's variance, 0.5²: not an exact fit


@pytest.mark.parametrize("block", BLOCKS)
def test_the_blockwise_mse_is_numpys_of_all_the_rows(monkeypatch, block):
    monkeypatch.setattr(least_squares, "BLOCK", block)
    x, y = unscaled_data()
    weight = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]], dtype=torch.float64)  # float64, as train passes it
    bias = torch.tensor([6.0, -2.0], dtype=torch.float64)
    residual = x.double().numpy() @ weight.numpy().T + bias.numpy() - y.double().numpy()
    assert mse(x, y, weight, bias) == pytest.approx(np.mean(residual**2), rel=1e-12)


@pytest.mark.parametrize("block", BLOCKS)
def test_the_blockwise_limit_is_2_over_the_largest_eigenvalue_of_all_the_rows(monkeypatch, block):
    monkeypatch.setattr(least_squares, "BLOCK", block)
    x, _ = unscaled_data()
    design = with_ones(x)
    # λmax of H = (2/N)·X̃ᵀX̃ from the singular values of X̃ itself, not from a sum of Gram blocks
    largest = 2 / len(design) * np.linalg.svd(design, compute_uv=False)[0] ** 2
    without_ones = 2 / len(design) * np.linalg.svd(x.double().numpy(), compute_uv=False)[0] ** 2
    assert abs(largest - without_ones) > 1e-3 * largest  # the inputs are not centred: the ones column counts
    assert stability_limit(x) == pytest.approx(2 / largest, rel=1e-9)
    assert stability_limit(x, momentum=0.9) == pytest.approx(2 * 1.9 / largest, rel=1e-9)
    assert stability_limit(x, weight_decay=0.5) == pytest.approx(2 / (largest + 0.5), rel=1e-9)
    assert stability_limit(x, momentum=0.5, weight_decay=3.0) == pytest.approx(2 * 1.5 / (largest + 3.0), rel=1e-9)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize(("factor", "status"), [(0.95, "ok"), (1.05, "diverged")])
def test_a_full_batch_run_converges_just_below_the_limit_and_diverges_just_above(tmp_path, factor, status):
    lr = factor * 2 / max(notebook_eigenvalues().real)
    result = train_command(tmp_path, f"lr={lr}", "iters=1000", run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    assert record["status"] == status
    assert record["stability_limit"] == pytest.approx(2 / max(notebook_eigenvalues().real), rel=1e-6)
    warning = f"warning: lr {lr} is above this data's stability limit 0.1198"
    if status == "ok":
        assert record["train_mse"] < 1e-10 and record["parameter_distance"] < 1e-4
        assert warning not in result.stderr
    else:
        assert result.stderr.count(warning) == 1  # one line, before training
        assert f"lr {lr} is above this data's stability limit 0.1198" in result.stdout.splitlines()[-2]


@pytest.mark.slow
@pytest.mark.e2e
def test_the_reported_optimum_is_numpys_lstsq_of_the_training_rows(tmp_path):
    rng = np.random.default_rng(3)
    features = rng.normal(size=(200, 3)) * [1.0, 10.0, 0.1]
    target = features @ [1.5, -0.3, 4.0] + 7.0 + rng.normal(scale=0.5, size=200)
    path = tmp_path / "table.csv"
    np.savetxt(path, np.column_stack([features, target]), delimiter=",", header="a,b,c,y", comments="")
    result = train_command(tmp_path, "data=csv", f"data.source.path={path}", "iters=5", run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    train = CsvData(path).load().train  # the rows the run trained on (the 60% split)
    x = np.hstack([train.x.double().numpy(), np.ones((len(train.x), 1))])
    solution, *_ = np.linalg.lstsq(x, train.y.double().numpy(), rcond=None)
    assert np.allclose(record["optimum_weight"], solution[:-1].T, rtol=0, atol=1e-6)
    assert np.allclose(record["optimum_bias"], solution[-1], rtol=0, atol=1e-6)
    assert record["optimum_mse"] == pytest.approx(np.mean((x @ solution - train.y.double().numpy()) ** 2), rel=1e-9)
    assert record["excess_mse"] == pytest.approx(record["train_mse"] - record["optimum_mse"], rel=1e-9)
    assert record["excess_mse"] > 0  # five steps from a random start are far from the optimum
