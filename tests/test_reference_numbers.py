"""The experiment's numbers against independent references: the notebook's plain PyTorch loop and the
closed-form least-squares solution."""

import numpy as np
import pytest
from conftest import compose_config

from linreg import tutorial
from linreg.sources import SEED_X, SEED_Y
from linreg.targets import build
from linreg.train import train

QUIET = ("logger=none", "~callbacks.progress")


@pytest.mark.parametrize(("lr", "iters", "seed"), [(0.001, 1000, 42), (0.01, 300, 0), (0.05, 50, 123)])
def test_lightning_equals_the_plain_pytorch_loop(tmp_path, lr, iters, seed):
    record = train(compose_config(f"lr={lr}", f"iters={iters}", f"seed={seed}", *QUIET), tmp_path)
    plain = tutorial.nn_loop(lr=lr, iters=iters, seed=seed).values
    assert record["steps"] == iters
    assert record["weight"][0][0] == pytest.approx(plain["w"], abs=1e-6)
    assert record["bias"][0] == pytest.approx(plain["b"], abs=1e-6)
    assert record["predictions"][0][0] == pytest.approx(plain["f5"], abs=1e-5)


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    design = np.hstack([x, np.ones((len(x), 1))])
    solution = np.linalg.lstsq(design.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    return solution[:-1, 0], float(solution[-1, 0])


@pytest.mark.parametrize(
    ("precision", "tolerance"),
    [([], 1e-3), (["+trainer.precision=64-true"], 1e-9)],  # float32, the default; float64: as close as it gets
    ids=["float32", "float64"],
)
def test_synthetic_data_reaches_the_least_squares_solution(tmp_path, precision, tolerance):
    overrides = [
        *precision,
        "data=synthetic",
        "data.source.n_features=3",
        "data.source.noise=0.5",
        "data.source.weight=[1.5,-2.0,0.5]",
        "data.source.bias=0.3",
        "lr=0.1",
        "iters=1500",
        *QUIET,
    ]
    cfg = compose_config(*overrides)
    record = train(cfg, tmp_path)
    splits = build("data", cfg.data).splits
    w_star, b_star = _least_squares(splits.train.x.numpy(), splits.train.y.numpy())
    assert not np.allclose(w_star, [1.5, -2.0, 0.5], atol=1e-3)  # noise: the optimum is not the truth
    np.testing.assert_allclose(record["weight"][0], w_star, atol=tolerance)
    assert record["bias"][0] == pytest.approx(b_star, abs=tolerance)


def test_csv_file_reaches_the_least_squares_solution(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 2))
    y = x @ np.array([[3.0], [-1.0]]) + 0.5 + rng.normal(scale=0.2, size=(200, 1))
    path = tmp_path / "points.csv"
    np.savetxt(path, np.hstack([x, y]), delimiter=",", header="a,b,target", comments="")
    cfg = compose_config("data=csv", f"data.source.path={path}", "lr=0.1", "iters=1500", *QUIET)
    record = train(cfg, tmp_path / "run")
    splits = build("data", cfg.data).splits
    w_star, b_star = _least_squares(splits.train.x.numpy(), splits.train.y.numpy())
    np.testing.assert_allclose(record["weight"][0], w_star, atol=1e-3)
    assert record["bias"][0] == pytest.approx(b_star, abs=1e-3)
    assert record["val_r2"] > 0.95


def test_mini_batches_still_reach_the_seed_answer(tmp_path):
    record = train(compose_config("lr=0.05", "iters=2000", "data.batch_size=2", *QUIET), tmp_path)
    assert record["batch_size"] == 2
    assert record["weight"][0][0] == pytest.approx(2.0, abs=1e-3)
    assert record["bias"][0] == pytest.approx(0.0, abs=1e-3)


def test_validation_metrics_match_a_direct_computation(tmp_path):
    record = train(compose_config("lr=0.01", "iters=100", *QUIET), tmp_path)
    w, b = record["weight"][0][0], record["bias"][0]
    x = np.array([1.0, 2, 3, 4])
    residual = w * x + b - 2 * x
    assert record["val_mse"] == pytest.approx(np.mean(residual**2), rel=1e-5)
    assert record["val_mae"] == pytest.approx(np.mean(np.abs(residual)), rel=1e-5)
    r2 = 1 - np.sum(residual**2) / np.sum((2 * x - 5) ** 2)
    assert record["val_r2"] == pytest.approx(r2, rel=1e-5)


@pytest.mark.parametrize(("lr", "seed"), [(1.0, 42), (0.5, 0), (0.13, 7)])
def test_a_run_diverges_at_the_step_a_plain_pytorch_loop_does(tmp_path, lr, seed):
    """The step results.json names is the first whose loss is not finite, counted as Lightning counts steps (the
    loss of optimizer step k, from 1), in the plain loop the notebook's nn-loop cell runs from the same weights."""
    import math

    import torch
    from torch import nn

    x, y = torch.tensor(SEED_X), torch.tensor(SEED_Y)
    torch.manual_seed(seed)
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    step = 0
    while True:
        step += 1
        loss = nn.functional.mse_loss(model(x), y)
        if not math.isfinite(loss.item()):
            break
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    record = train(compose_config(f"lr={lr}", f"seed={seed}", f"iters={step + 50}", *QUIET), tmp_path)
    assert (record["status"], record["diverged_at_step"], record["steps"]) == ("diverged", step, step)
