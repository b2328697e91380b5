"""`python scripts/train.py ...` and `python scripts/predict.py ...` as subprocesses into temporary folders:
the seed run and what a real `tensorboard` server shows of it, resuming it, and a table of bad inputs."""

import os
import re
import shutil

import pytest
import torch
from conftest import hparams_sessions, read_json, run_command, snapshot, tensorboard_server, train_command
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = pytest.mark.slow

RESULT_KEYS = {
    "status", "lr", "iters", "steps", "seed", "train_loss", "val_mse", "val_mae", "val_r2",
    "test_mse", "test_mae", "test_r2", "weight", "bias", "test_inputs", "test_targets", "predictions", "wall_s",
}  # fmt: skip


def test_seed_run_learns_f_of_x_equals_2x(seed_run):
    result, run_dir = seed_run
    record = read_json(run_dir / "results.json")
    assert record.keys() >= RESULT_KEYS
    assert record["status"] == "ok"
    assert (record["lr"], record["iters"], record["steps"], record["seed"]) == (0.1, 1000, 1000, 42)
    assert record["weight"][0][0] == pytest.approx(2.0, abs=1e-3)
    assert record["bias"][0] == pytest.approx(0.0, abs=1e-3)
    assert f"{record['predictions'][0][0]:.3f}" == "10.000"
    assert "Prediction after training: f(5) = 10.000" in result.stdout
    assert "Prediction before training: f(5) = " in result.stdout
    assert f"run folder: {run_dir.relative_to(run_dir.parents[3])}" in result.stdout
    assert run_dir.name.endswith("_lr=0.1")  # named by what was overridden: readable in TensorBoard's run list


def test_test_score_is_the_squared_error_of_the_printed_f_of_5(tmp_path):
    """The notebook's nn cell (lr 0.001, 1000 steps) stops short of 10: the test MSE is (f(5) - 10)^2."""
    result = train_command(tmp_path, run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    printed = float(re.search(r"Prediction after training: f\(5\) = (\S+)", result.stdout)[1])
    assert (record["test_inputs"], record["test_targets"]) == ([[5.0]], [[10.0]])
    assert 9 < printed < 9.999
    assert record["test_mse"] == pytest.approx((printed - 10) ** 2, abs=2 * abs(printed - 10) * 5e-4 + 1e-6)
    assert record["test_mse"] == pytest.approx((record["predictions"][0][0] - 10) ** 2, rel=1e-5)
    assert record["test_mae"] == pytest.approx(abs(record["predictions"][0][0] - 10), rel=1e-5)
    assert record["test_r2"] is None  # one test point: R2 is undefined, not 0 and not NaN
    assert f"test mse {record['test_mse']:.8f}, test mae {record['test_mae']:.8f}, test r2 n/a" in result.stdout


def test_run_folder_holds_events_checkpoint_and_config(seed_run):
    _, run_dir = seed_run
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 1000
    events = EventAccumulator(str(run_dir))
    events.Reload()
    loss = events.Scalars("loss/train")
    assert loss[0].step == 1 and loss[-1].step == 1000
    assert loss[-1].value < loss[0].value
    assert {"loss/val", "val/mae", "val/r2", "test/mse", "test/mae"} <= set(events.Tags()["scalars"])
    assert [event.step for event in events.Images("prediction/fit")] == [0, 100, 1000]
    assert (run_dir / "fit.png").read_bytes().startswith(b"\x89PNG")


def test_run_writes_nothing_outside_its_folder(seed_run):
    _, run_dir = seed_run
    cwd = run_dir.parents[3]
    assert sorted(p.name for p in cwd.iterdir()) == ["outputs"]
    assert [p.relative_to(cwd).parts[:2] for p in (cwd / "outputs").iterdir()] == [("outputs", "runs")]


def test_predict_from_the_run_folder_and_the_checkpoint(seed_run, tmp_path):
    _, run_dir = seed_run
    for target in (run_dir, run_dir / "checkpoints" / "last.ckpt"):
        result = run_command(["scripts/predict.py", str(target), "5", "0.5"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["f(5) = 10.000", "f(0.5) = 1.000"]


def test_tensorboard_serves_the_loss_curve_and_hparams(seed_run):
    _, run_dir = seed_run
    with tensorboard_server(run_dir) as api:
        assert api("/data/runs") == ["."]
        tags = api("/data/plugin/scalars/tags")["."]
        assert {"loss/train", "loss/val", "val/mae", "val/r2"} <= tags.keys()
        curve = api("/data/plugin/scalars/scalars?run=.&tag=loss/train")
        steps = [step for _, step, _ in curve]
        assert steps[0] == 1 and steps[-1] == 1000 and len(steps) == 101
        experiment = api("/data/plugin/hparams/experiment", {"experimentName": ""})
        assert {"lr", "iters", "batch_size", "seed", "data"} <= {h["name"] for h in experiment["hparamInfos"]}
        (session,) = hparams_sessions(api).values()
    assert session["hparams"]["lr"] == 0.1
    assert session["hparams"]["iters"] == 1000
    assert session["hparams"]["data"] == "seed"
    assert session["metrics"]["loss/val"] == pytest.approx(0.0, abs=1e-6)
    assert session["metrics"]["val/r2"] == pytest.approx(1.0, abs=1e-6)


def test_resume_keeps_the_config_it_started_with(tmp_path, seed_run):
    _, run_dir = seed_run
    result = train_command(tmp_path, f"resume={run_dir}", "lr=0.5")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: resume: a resumed run keeps the config it started with; only iters may change, not lr"
    )
    result = train_command(tmp_path, f"resume={tmp_path}/nope")
    assert result.returncode == 2 and "is not a run folder" in result.stderr


def test_resume_with_more_iters_trains_on(tmp_path, seed_run):
    _, run_dir = seed_run
    result = train_command(tmp_path, f"resume={run_dir}", "iters=1200", run_dir=tmp_path / "more")
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "more" / "results.json")
    assert (record["steps"], record["lr"]) == (1200, 0.1)  # the original run's lr, not the default


# Bad input, as a user would type it: one clear line, a non-zero exit, and nothing else touched. Every case
# runs the real command in a subprocess next to an existing run (the seed run), whose files must not change.

CSV_ROWS = "x,y\n1,2\n2,4\n3,6\n4,8\n5,10\n6,12\n"


class RunsCodeWhenUnpickled:
    """A checkpoint that would create a file when loaded without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def make_inputs(folder, seed_run_dir):
    """The files the cases refer to, written into `folder`."""
    files = {
        "missing": folder / "missing.csv",
        "empty": folder / "empty.csv",
        "header_only": folder / "header_only.csv",
        "ragged": folder / "ragged.csv",
        "text_cell": folder / "text_cell.csv",
        "nan": folder / "nan.csv",
        "inf": folder / "inf.csv",
        "ok": folder / "ok.csv",
        "one_row": folder / "one_row.csv",
        "latin1": folder / "latin1.csv",
        "truncated": folder / "truncated.ckpt",
        "other_shape": folder / "other_shape.ckpt",
        "foreign_class": folder / "foreign_class.ckpt",
        "pickle": folder / "pickle.ckpt",
        "not_ckpt": folder / "notes.ckpt",
        "marker": folder / "code_ran",
        "run": seed_run_dir,
        "evil_run": folder / "evil_run",
    }
    files["empty"].write_text("")
    files["header_only"].write_text("x,y\n")
    files["ragged"].write_text("x,y\n1,2\n2\n3,6\n")
    files["text_cell"].write_text("x,y\n1,2\n2,four\n3,6\n")
    files["nan"].write_text("x,y\n1,2\nnan,4\n3,6\n")
    files["inf"].write_text("x,y\n1,2\n2,inf\n3,6\n")
    files["ok"].write_text(CSV_ROWS)
    files["one_row"].write_text("x,y\n1,2\n")
    files["latin1"].write_bytes("prix,y\n1,2\n2,caf\u00e9\n3,6\n".encode("latin-1"))  # a spreadsheet's export
    checkpoint = (seed_run_dir / "checkpoints" / "last.ckpt").read_bytes()
    files["truncated"].write_bytes(checkpoint[: len(checkpoint) // 2])
    linear = {
        "hyper_parameters": {"in_features": 1, "out_features": 1},
        "model_class": "linreg.models.LinearRegression",
    }
    state = {"network.weight": torch.zeros(1, 3), "network.bias": torch.zeros(1)}
    torch.save({"state_dict": state, **linear}, files["other_shape"])
    torch.save({**linear, "state_dict": state, "model_class": "pathlib.Path.touch"}, files["foreign_class"])
    torch.save({**linear, "state_dict": RunsCodeWhenUnpickled(files["marker"])}, files["pickle"])
    files["not_ckpt"].write_text("these are my notes, not a checkpoint\n")
    shutil.copytree(seed_run_dir / ".hydra", files["evil_run"] / ".hydra")
    (files["evil_run"] / "checkpoints").mkdir()
    shutil.copy(files["pickle"], files["evil_run"] / "checkpoints" / "last.ckpt")
    return files


TRAIN = "scripts/train.py"
PREDICT = "scripts/predict.py"
CASES = [
    # (command, what the one line says; every one exits with status 2)
    ([TRAIN, "lr=abc"], "error: lr: 'abc' is not a number; expected a finite number"),
    ([TRAIN, "lr=-1"], "error: lr: -1 is not allowed; expected a number > 0"),
    ([TRAIN, "iters=0"], "error: iters: 0 is not allowed; expected a whole number >= 1"),
    ([TRAIN, "data.batch_size=-4"], "error: data.batch_size: -4 is not allowed; expected a whole number >= 1"),
    ([TRAIN, "lrr=0.1"], "error: lrr: no such key in the config; expected one of its keys"),
    ([TRAIN, "-m", "data=nosuch,seed"], "error: data=nosuch: no such config; expected one of csv,"),
    ([TRAIN, "lr"], "error: Error parsing override 'lr'; missing EQUAL"),
    ([TRAIN, "lr=${{nosuch}}"], "error: lr: Interpolation key 'nosuch' not found"),
    ([TRAIN, "data._target_=pathlib.Path.touch"], "error: data._target_: 'pathlib.Path.touch' is not an allowed"),
    ([TRAIN, "+model.colour=red"], "error: model: linreg.models.LinearRegression refused its arguments: Linear"),
    ([TRAIN, "optimizer.momentum=-0.5"], "error: optimizer: torch.optim.SGD refused its arguments: Invalid momentum"),
    ([TRAIN, "model=mlp", "model.activation=swish"], "error: model.activation: 'swish' is not allowed; expected one"),
    ([TRAIN, "callbacks=null"], "error: callbacks=null: not a config; expected one of the configs in conf/callbacks/"),
    (
        [TRAIN, "logger=null"],
        "error: logger=null: not a config; expected one of the configs in conf/logger/ (logger=none",
    ),
    ([TRAIN, "+callbacks.x=5"], "error: callbacks.x: 5 is not allowed; expected {{_target_: <a class>, ...}}"),
    ([TRAIN, "data.source=null"], "error: data.source: None is not allowed; expected a source, as in data=seed"),
    ([TRAIN, "+trainer.precision=banana"], "error: trainer: lightning.Trainer refused its arguments: Precision"),
    ([TRAIN, "data=csv", "data.source.path={missing}"], "error: data.source.path: no such file '{missing}'"),
    (
        [TRAIN, "data=csv", "data.source.path={empty}"],
        "error: data.source.path: '{empty}' is empty; expected a header row",
    ),
    ([TRAIN, "data=csv", "data.source.path={header_only}"], "has a header but no rows of data"),
    ([TRAIN, "data=csv", "data.source.path={ragged}"], "line 3 has 1 cells, expected 2 like the header"),
    ([TRAIN, "data=csv", "data.source.path={text_cell}"], "line 3, column 'y': 'four' is not a number"),
    ([TRAIN, "data=csv", "data.source.path={nan}"], "line 3, column 'x': nan is not a finite number"),
    ([TRAIN, "data=csv", "data.source.path={inf}"], "line 3, column 'y': inf is not a finite number"),
    ([TRAIN, "data=csv", "data.source.path={ok}", "data.source.target=price"], "data.source.target: no column 'price'"),
    ([TRAIN, "data=csv", "data.source.path={one_row}"], "1 rows are too few to split"),
    ([TRAIN, "data=csv", "data.source.path={latin1}"], "'{latin1}' is not UTF-8 text (it holds the byte 0xe9)"),
    ([TRAIN, "resume={run}", "lr=0.5"], "only iters may change, not lr"),
    ([TRAIN, "resume={evil_run}"], "would run code when loaded, refused by weights_only=True"),
    ([PREDICT, "{run}", "1,2"], "error: x: '1,2' has 2 value(s); the model expects 1 feature(s) per sample"),
    ([PREDICT, "{run}", "five"], "error: x: 'five' is not a number"),
    ([PREDICT, "{truncated}", "5"], "error: checkpoint: cannot load '{truncated}'"),
    ([PREDICT, "{other_shape}", "5"], "does not fit LinearRegression: Error(s) in loading state_dict"),
    (
        [PREDICT, "{foreign_class}", "5"],
        "error: checkpoint: model_class: 'pathlib.Path.touch' is not an allowed target",
    ),
    ([PREDICT, "{pickle}", "5"], "would run code when loaded, refused by weights_only=True"),
    ([PREDICT, "{not_ckpt}", "5"], "error: checkpoint: cannot load '{not_ckpt}': it is not a PyTorch checkpoint"),
    ([PREDICT, "{missing}", "5"], "error: checkpoint: no such file '{missing}'"),
]


@pytest.mark.parametrize(("command", "message"), CASES, ids=[" ".join(c[0][1:]) for c in CASES])
def test_bad_input(tmp_path, seed_run, command, message):
    _, run_dir = seed_run
    files = make_inputs(tmp_path, run_dir)
    command = [part.format(**files) for part in command]
    message = message.format(**files)
    before, inputs_before = snapshot(run_dir), snapshot(tmp_path)

    result = run_command(command, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not files["marker"].exists(), "the checkpoint's code ran"
    assert snapshot(run_dir) == before  # the other run is untouched
    after = snapshot(tmp_path)
    assert {name: after[name] for name in inputs_before} == inputs_before  # the input files too
    assert [name for name in after if name not in inputs_before] == []  # not even Hydra's empty run folder
    assert not list(tmp_path.glob("outputs/*/*"))


def test_hydra_full_error_shows_hydras_own_report(tmp_path):
    result = run_command(["scripts/train.py", "lrr=0.1"], cwd=tmp_path, HYDRA_FULL_ERROR="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "Could not override 'lrr'" in result.stderr
