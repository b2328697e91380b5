"""Standardization (`data.standardize`): statistics of the training split only, training in standardized units,
everything a person reads in the data's units, and the fits it makes reachable (checked against numpy's lstsq)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, hparams_sessions, read_json, run_command, tensorboard_server, train_command
from omegaconf import OmegaConf

from linreg.data import RegressionDataModule
from linreg.errors import InvalidInput
from linreg.least_squares import condition_number
from linreg.resume import run_config
from linreg.sources import CsvData, SeedData, Split, Splits, SyntheticData
from linreg.standardization import Standardization
from linreg.sweep import table
from linreg.targets import build
from linreg.train import train

QUIET = ("logger=none", "~callbacks.progress")


class GivenSplits:
    """A source whose splits are given: the validation split can be made as unlike the training one as wanted."""

    name = "given"

    def __init__(self, splits: Splits) -> None:
        self.splits = splits

    def load(self) -> Splits:
        return self.splits


def test_the_statistics_come_from_the_training_split_only():
    rng = np.random.default_rng(0)
    train_x = rng.normal([5.0, -3.0], [2.0, 0.5], size=(50, 2))
    train_y = rng.normal(10.0, 4.0, size=(50, 1))
    val_x, val_y = rng.normal(1000.0, 300.0, size=(20, 2)), rng.normal(-500.0, 100.0, size=(20, 1))
    split = [Split(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
             for x, y in ((train_x, train_y), (val_x, val_y), (val_x[:3], val_y[:3]))]  # fmt: skip
    datamodule = RegressionDataModule(GivenSplits(Splits(*split)), standardize=True)
    stats = datamodule.standardization
    np.testing.assert_allclose(stats.x_mean, train_x.astype(np.float32).mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.x_scale, train_x.astype(np.float32).std(0), rtol=1e-6)
    np.testing.assert_allclose(stats.y_mean, train_y.astype(np.float32).mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.y_scale, train_y.astype(np.float32).std(0), rtol=1e-6)
    served = datamodule.served
    np.testing.assert_allclose(served.train.x.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(served.train.x.std(0, correction=0), 1, atol=1e-6)
    # the validation rows are scaled by the training statistics, not their own: far from mean 0, std 1
    expected = (val_x.astype(np.float32) - stats.x_mean.numpy()) / stats.x_scale.numpy()
    np.testing.assert_allclose(served.val.x, expected, rtol=1e-5)
    assert served.val.x.mean() > 100
    assert datamodule.splits.val.x is split[1].x  # the source's data stays in its own units


def test_a_constant_column_is_centred_not_scaled():
    x = torch.tensor([[1.0, 7.0], [2.0, 7.0], [3.0, 7.0], [4.0, 7.0]])
    y = 2 * x[:, :1]
    stats = Standardization.of(x, y)
    assert stats.x_scale.tolist() == [pytest.approx(np.std([1, 2, 3, 4])), 1.0]
    assert stats.inputs(x)[:, 1].tolist() == [0.0] * 4  # no NaN
    assert condition_number(stats.inputs(x)) == float("inf")  # the record says the fit is not unique


def test_the_linear_model_in_original_units_predicts_what_the_standardized_one_does():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal([100.0, 0.01], [30.0, 0.002], size=(40, 2)))
    y = torch.tensor(rng.normal(5e4, 1e3, size=(40, 1)))
    stats = Standardization.of(x, y)
    weight, bias = torch.tensor([[0.3, -1.2]], dtype=torch.float64), torch.tensor([0.1], dtype=torch.float64)
    original_weight, original_bias = stats.linear_in_original_units(weight, bias)
    standardized = stats.outputs(stats.inputs(x) @ weight.T + bias)
    np.testing.assert_allclose(x @ original_weight.T + original_bias, standardized, rtol=1e-12)


def _scaled_csv(path, rows=300, seed=7):
    """Two features whose scales differ by 1e4 (std 1 around 10, std 1e4 around 5e4), y linear in both plus noise."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(10, 1, rows), rng.normal(5e4, 1e4, rows)
    y = 2 * a - 3e-4 * b + 1 + rng.normal(0, 1, rows)
    np.savetxt(path, np.column_stack([a, b, y]), delimiter=",", header="a,b,y", comments="", fmt="%.10g")
    return path


def _least_squares_val_r2(splits: Splits) -> float:
    """R2 on the validation split of numpy's least-squares fit to the training split, in float64."""
    design = np.hstack([splits.train.x.numpy(), np.ones((len(splits.train), 1))])
    solution = np.linalg.lstsq(design, splits.train.y.numpy(), rcond=None)[0]
    predicted = np.hstack([splits.val.x.numpy(), np.ones((len(splits.val), 1))]) @ solution
    y = splits.val.y.numpy()
    return float(1 - ((predicted - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


@pytest.mark.slow
@pytest.mark.e2e
def test_columns_1e4_apart_reach_the_least_squares_fit_only_when_standardized(tmp_path):
    """The README's CSV command at lr=0.1, iters=500: standardized, the least-squares fit; unstandardized, the same
    lr diverges, and an lr small enough not to diverge stalls far from it. The record says which, and why."""
    path = _scaled_csv(tmp_path / "scaled.csv")
    lstsq_r2 = _least_squares_val_r2(CsvData(path=str(path)).load())
    command = ["data=csv", f"data.source.path={path}", "data.source.target=y", "iters=500", "logger=none"]
    grid = ["-m", "lr=0.1,1e-10", "data.standardize=true,false", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = run_command(["scripts/train.py", *grid, *command], cwd=tmp_path)  # one process for the three runs
    assert result.returncode == 0, result.stderr  # a diverged job is a result: the sweep succeeds
    runs = {
        (job["lr"], job["standardize"]): job
        for job in (read_json(path) for path in (tmp_path / "sweep").glob("*/results.json"))
    }
    standardized, diverged, stalled = runs[0.1, True], runs[0.1, False], runs[1e-10, False]
    assert standardized["status"] == "ok" and standardized["standardize"] is True
    assert standardized["val_r2"] == pytest.approx(lstsq_r2, abs=0.01)
    assert standardized["condition_number"] < 2  # two independent standardized columns and the bias
    assert diverged["status"] == "diverged" and diverged["diverged_at_step"] <= 10
    assert stalled["status"] == "ok" and stalled["val_r2"] < lstsq_r2 - 0.5  # 500 steps and nowhere near
    assert diverged["condition_number"] == stalled["condition_number"] > 1e5  # why: the raw design's conditioning


@pytest.mark.slow
@pytest.mark.e2e
def test_predict_takes_raw_inputs_and_equals_the_network_on_standardized_ones(tmp_path):
    path = _scaled_csv(tmp_path / "scaled.csv", rows=60)
    cfg = compose_config("data=csv", f"data.source.path={path}", "lr=0.1", "iters=50", *QUIET)
    record = train(cfg, tmp_path / "run")
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    state = checkpoint["state_dict"]
    train_rows = CsvData(path=str(path)).load().train
    x_mean, x_std = train_rows.x.numpy().mean(0), train_rows.x.numpy().std(0)  # numpy's, not the project's
    y_mean, y_std = train_rows.y.numpy().mean(0), train_rows.y.numpy().std(0)
    raw = np.array([[10.5, 61000.0], [8.0, 20000.0]])
    standardized = (raw - x_mean) / x_std
    network = standardized @ state["network.weight"].double().numpy().T + state["network.bias"].double().numpy()
    expected = network * y_std + y_mean

    result = run_command(["scripts/predict.py", str(tmp_path / "run"), "10.5,61000", "8,20000"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = [float(line.split(" = ")[1]) for line in result.stdout.splitlines()]
    np.testing.assert_allclose(printed, expected[:, 0], atol=1e-3)
    # the record's weight and bias are the same function, in the data's units
    np.testing.assert_allclose(raw @ np.array(record["weight"]).T + record["bias"], expected, rtol=1e-5)
    assert np.array(record["standardized_weight"]) == pytest.approx(state["network.weight"].numpy())


def test_a_resumed_standardized_run_equals_an_uninterrupted_one(tmp_path):
    path = _scaled_csv(tmp_path / "scaled.csv", rows=60)
    base = ("data=csv", f"data.source.path={path}", "lr=0.1", "optimizer.momentum=0.9", *QUIET)
    whole = train(compose_config(*base, "iters=40"), tmp_path / "whole")
    part_dir = tmp_path / "part"
    (part_dir / ".hydra").mkdir(parents=True)
    part_cfg = compose_config(*base, "iters=15")
    OmegaConf.save(part_cfg, part_dir / ".hydra" / "config.yaml")  # where Hydra keeps it, for resume=
    train(part_cfg, part_dir)
    resumed_overrides = [f"resume={part_dir}", "iters=40"]
    resumed_cfg = run_config(compose_config(*QUIET, *resumed_overrides), resumed_overrides)  # the saved config
    resumed = train(resumed_cfg, tmp_path / "resumed", resumed_overrides)
    assert resumed["steps"] == 40
    assert resumed["weight"] == whole["weight"] and resumed["bias"] == whole["bias"]


@pytest.mark.slow
@pytest.mark.e2e
def test_all_rows_train_when_the_fractions_are_0_and_absent_metrics_stay_absent(tmp_path):
    rows = "\n".join(f"{i},{3 * i - 1}" for i in range(8))
    path = tmp_path / "line.csv"
    path.write_text("x,y\n" + rows + "\n")
    fractions = ("data.source.val_fraction=0", "data.source.test_fraction=0")
    result = train_command(tmp_path, "data=csv", f"data.source.path={path}", *fractions, "lr=0.1", "iters=300",
                           run_dir=tmp_path / "run")  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    assert record["status"] == "ok" and record["batch_size"] == 8  # every row trains
    assert not {"val_mse", "val_mae", "val_r2"} & record.keys()  # absent, not 0 or null
    assert record["test_inputs"] == [] and record["predictions"] == []
    assert record["weight"][0][0] == pytest.approx(3.0, abs=1e-4) and record["bias"][0] == pytest.approx(-1.0, abs=1e-3)
    assert "val" not in result.stdout and "final train loss (standardized)" in result.stdout
    header, (cells,) = table([{"job": "lr=0.1", **record}])
    assert [cells[header.index(m)] for m in ("val_mse", "val_mae", "val_r2")] == ["", "", ""]
    with tensorboard_server(tmp_path / "run") as api:
        (session,) = hparams_sessions(api).values()
    assert session["metrics"].keys() == {"train/mse"}  # no NaN stand-ins for the missing val and test
    # in the data's units, as every HPARAMS metric is: loss/train is in the standardized units trained
    assert session["metrics"]["train/mse"] == pytest.approx(record["train_mse"], rel=1e-6)


def test_the_notebooks_data_is_not_standardized_by_default():
    cfg = compose_config()
    datamodule = build("data", cfg.data)
    assert cfg.data.standardize is False and datamodule.standardization.is_identity
    assert datamodule.served.train.x is datamodule.splits.train.x  # served as it is: the notebook's numbers
    assert compose_config("data=csv").data.standardize is True


@pytest.mark.parametrize("standardize", [False, True])
def test_the_condition_number_is_numpys_of_the_design_trained_on(monkeypatch, standardize):
    """Blockwise (blocks of 7 rows here, to exercise the blocks) and exact even for Longley's 4.9e9."""
    monkeypatch.setattr("linreg.least_squares.BLOCK", 7)
    table = torch.tensor(np.loadtxt(Path(__file__).parent / "data" / "longley.csv", delimiter=",", skiprows=1))
    x, y = table[:, :6], table[:, 6:]
    stats = Standardization.of(x, y) if standardize else Standardization()
    design = np.hstack([stats.inputs(x).numpy(), np.ones((16, 1))])
    assert condition_number(stats.inputs(x)) == pytest.approx(np.linalg.cond(design), rel=1e-6)


@pytest.mark.parametrize(
    ("build_it", "message"),
    [
        (lambda: RegressionDataModule(SeedData(), standardize="yes"), "data.standardize: 'yes' is not allowed"),
        (lambda: SyntheticData(val_fraction=-0.1), "data.source.val_fraction: -0.1 is not allowed; expected a number"),
        (lambda: SyntheticData(test_fraction=1), "data.source.test_fraction: 1 is not allowed; expected a number"),
        (lambda: SyntheticData(n_samples=4, val_fraction=0, test_fraction=0.9), "4 rows are too few to split into"),
    ],
)
def test_bad_standardize_and_fraction_values_are_refused(build_it, message):
    with pytest.raises(InvalidInput, match=message):
        build_it().load()


def test_a_fraction_of_0_leaves_that_split_empty():
    splits = SyntheticData(n_samples=50, val_fraction=0, test_fraction=0.2).load()
    assert [len(splits.train), len(splits.val), len(splits.test)] == [40, 0, 10]
