"""`python scripts/train.py ...` and `python scripts/predict.py ...` into temporary folders: the seed run and
what a real `tensorboard` server shows of it, resuming it (subprocesses, marked e2e), and a table of bad inputs
(run in this process, a few of them also as subprocesses)."""

import os
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import (
    REPO,
    compose_config,
    hparams_sessions,
    read_json,
    run_command,
    script_in_process,
    snapshot,
    tensorboard_server,
    train_command,
    train_in_process,
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linreg.config import GROUPS, TOP_LEVEL_KEYS

RESULT_KEYS = {
    "status", "lr", "iters", "steps", "seed", "train_loss", "val_mse", "val_mae", "val_r2",
    "test_mse", "test_mae", "test_r2", "weight", "bias", "test_inputs", "test_targets", "predictions", "wall_s",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.e2e
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
    assert run_dir.name.endswith("_lr-0.1")  # named by what was overridden: readable in TensorBoard's run list


@pytest.mark.slow
@pytest.mark.e2e
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


@pytest.mark.slow
@pytest.mark.e2e
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


@pytest.mark.slow
@pytest.mark.e2e
def test_run_writes_nothing_outside_its_folder(seed_run):
    _, run_dir = seed_run
    cwd = run_dir.parents[3]
    assert sorted(p.name for p in cwd.iterdir()) == ["outputs"]
    assert [p.relative_to(cwd).parts[:2] for p in (cwd / "outputs").iterdir()] == [("outputs", "runs")]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not torch.cuda.is_available(), reason="trainer=gpu needs a CUDA GPU (these CI machines have none)")
def test_gpu_run_trains_what_the_cpu_run_trains(seed_run, tmp_path):
    """Every callback works on a model that lives on the GPU while the splits stay on the CPU (the fit
    pictures once failed there), the numbers are the CPU run's, and its checkpoint predicts on the CPU."""
    _, cpu_dir = seed_run
    gpu_dir = tmp_path / "gpu"
    result = train_command(tmp_path, "lr=0.1", "trainer=gpu", run_dir=gpu_dir)
    assert result.returncode == 0, result.stderr
    gpu, cpu = read_json(gpu_dir / "results.json"), read_json(cpu_dir / "results.json")
    assert (gpu["status"], gpu["steps"], gpu["overrides"]["trainer"]) == ("ok", 1000, "gpu")
    for key in ("train_loss", "val_mse", "test_mse", "weight", "bias", "predictions"):
        assert np.allclose(gpu[key], cpu[key], rtol=1e-4, atol=1e-6), key
    assert (gpu_dir / "fit.png").read_bytes().startswith(b"\x89PNG")
    predicted = run_command(["scripts/predict.py", str(gpu_dir), "5"], cwd=tmp_path, CUDA_VISIBLE_DEVICES="")
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.splitlines() == ["f(5) = 10.000"]


@pytest.mark.slow
@pytest.mark.e2e
def test_predict_from_the_run_folder_and_the_checkpoint(seed_run, tmp_path):
    _, run_dir = seed_run
    for target in (run_dir, run_dir / "checkpoints" / "last.ckpt"):
        result = run_command(["scripts/predict.py", str(target), "5", "0.5"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["f(5) = 10.000", "f(0.5) = 1.000"]


@pytest.mark.slow
@pytest.mark.e2e
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


@pytest.mark.slow
@pytest.mark.e2e
def test_resume_keeps_the_config_it_started_with(tmp_path, seed_run):
    _, run_dir = seed_run
    result = train_command(tmp_path, f"resume={run_dir}", "lr=0.5")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: resume: a resumed run keeps the config it started with; only iters may change, not lr"
    )
    result = train_command(tmp_path, f"resume={tmp_path}/nope")
    assert result.returncode == 2 and "is not a run folder" in result.stderr


@pytest.mark.slow
@pytest.mark.e2e
def test_resume_with_more_iters_trains_on(tmp_path, seed_run):
    _, run_dir = seed_run
    result = train_command(tmp_path, f"resume={run_dir}", "iters=1200", run_dir=tmp_path / "more")
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "more" / "results.json")
    assert (record["steps"], record["lr"]) == (1200, 0.1)  # the original run's lr, not the default


# Bad input, as a user would type it: one clear line, a non-zero exit, and nothing else touched. Every case runs
# the real entry point (scripts/train.py or scripts/predict.py) in this process next to an existing run, whose
# files must not change; the cases of each different kind of refusal (E2E_CASES) also run the command in a
# subprocess next to the seed run, as a user's shell would.

CSV_ROWS = "x,y\n1,2\n2,4\n3,6\n4,8\n5,10\n6,12\n"


class RunsCodeWhenUnpickled:
    """A checkpoint that would create a file when loaded without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory):
    """`python scripts/train.py lr=0.1` (the seed run's command), run in this process: the run next to which the
    bad inputs run, and whose checkpoint some of them are made from."""
    cwd = tmp_path_factory.mktemp("existing_run")
    result = train_in_process(cwd, "lr=0.1", run_dir=cwd / "run")
    assert result.code == 0, result.stderr
    return cwd / "run"


@pytest.fixture(scope="module")
def diverged_run(tmp_path_factory):
    """`python scripts/train.py lr=10 iters=50`: the loss overflows within a few steps (run in this process)."""
    cwd = tmp_path_factory.mktemp("diverged_run")
    result = train_in_process(cwd, "lr=10", "iters=50", "logger=none", run_dir=cwd / "run")
    assert result.code == 0, result.stderr
    assert read_json(cwd / "run" / "results.json")["status"] == "diverged"
    return result, cwd / "run"


@pytest.fixture(scope="module")
def reshaped_csv_run(tmp_path_factory):
    """A run trained on a CSV with two input columns, whose file then lost one (run in this process)."""
    cwd = tmp_path_factory.mktemp("csv_run")
    table = cwd / "table.csv"
    table.write_text("a,b,y\n" + "".join(f"{i},{i * 2},{i * 3}\n" for i in range(20)))
    overrides = ("data=csv", f"data.source.path={table}", "iters=5", "logger=none")
    result = train_in_process(cwd, *overrides, run_dir=cwd / "run")
    assert result.code == 0, result.stderr
    table.write_text("a,y\n" + "".join(f"{i},{i * 3}\n" for i in range(20)))
    return cwd / "run"


LONG_CELL = "1" * 140_000  # over the csv module's 128 KiB field limit


def make_inputs(folder, run_dir):
    """The files the cases refer to, written into `folder`; some are made from the checkpoint of `run_dir`."""
    files = {
        "long_cell": folder / "long_cell.csv",
        "long_header": folder / "long_header.csv",
        "beyond_float32": folder / "beyond_float32.csv",
        "hash_row": folder / "hash_row.csv",
        "unnamed": folder / "unnamed.csv",
        "fifo": folder / "fifo.csv",
        "a_file": folder / "a_file",
        "json": folder / "notes.json",
        "bare": folder / "bare.ckpt",
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
        "run": run_dir,
        "evil_run": folder / "evil_run",
    }
    rows = "1,2\n2,3\n3,4\n4,5\n5,6\n6,7\n"
    files["long_cell"].write_text(f"x,y\n1,{LONG_CELL}\n{rows}")
    files["long_header"].write_text(f"x,{'y' * 140_000}\n{rows}")
    files["beyond_float32"].write_text("x,y\n1,2\n2,1e39\n3,4\n4,5\n5,6\n")
    files["hash_row"].write_text("x,y\n1,2\n#2,3\n3,4\n4,5\n5,6\n")
    files["unnamed"].write_text(f"x,\n{rows}")
    os.mkfifo(files["fifo"])
    files["a_file"].write_text("not a folder\n")
    files["json"].write_text('{"state_dict": {}}\n')
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    torch.save({key: saved[key] for key in ("state_dict", "hyper_parameters")}, files["bare"])
    files["empty"].write_text("")
    files["header_only"].write_text("x,y\n")
    files["ragged"].write_text("x,y\n1,2\n2\n3,6\n")
    files["text_cell"].write_text("x,y\n1,2\n2,four\n3,6\n")
    files["nan"].write_text("x,y\n1,2\nnan,4\n3,6\n")
    files["inf"].write_text("x,y\n1,2\n2,inf\n3,6\n")
    files["ok"].write_text(CSV_ROWS)
    files["one_row"].write_text("x,y\n1,2\n")
    files["latin1"].write_bytes("prix,y\n1,2\n2,caf\u00e9\n3,6\n".encode("latin-1"))  # a spreadsheet's export
    checkpoint = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
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
    shutil.copytree(run_dir / ".hydra", files["evil_run"] / ".hydra")
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
    ([TRAIN, "lrr=0.1"], "error: lrr: no such key in the config; expected lr=0.1"),
    ([TRAIN, "+lrr=0.1"], "error: lrr: 0.1 is read by nothing (+lrr added a key the run does not use); expected lr="),
    ([TRAIN, "momentum=0.9"], "error: momentum: no such key in the config; expected optimizer.momentum=0.9"),
    ([TRAIN, "+momentum=0.9"], "error: momentum: 0.9 is read by nothing (+momentum added a key the run does not u"),
    (
        [TRAIN, "model.momentum=0.9"],
        "error: model.momentum: no such key in the config; expected optimizer.momentum=0.9",
    ),
    ([TRAIN, "n_features=3"], "error: n_features: no such key in the config; expected data=synthetic data.source.n_f"),
    ([TRAIN, "data.n_features=3"], "error: data.n_features: no such key in the config; expected data=synthetic data."),
    (
        [TRAIN, "+data.n_features=3"],
        "error: data.n_features: linreg.data.RegressionDataModule takes no argument 'n_features'; expected one of",
    ),
    ([TRAIN, "+data.source.n_features=3"], "error: data.source: linreg.sources.SeedData refused its arguments: SeedD"),
    ([TRAIN, "itres=5"], "error: itres: no such key in the config; expected iters=5"),
    ([TRAIN, "lr=1e308"], "error: lr: 1e+308 is beyond float32's range; expected a magnitude below 3.4e+38"),
    ([TRAIN, "optimizer.momentum=1.5"], "error: optimizer.momentum: 1.5 is not allowed; expected a number in [0, 1)"),
    ([TRAIN, "data.batch_size=100"], "error: data.batch_size: 100 is larger than the 4 training rows of data=seed"),
    ([TRAIN, "data=null"], "error: data=null: not a config; expected one of the configs in conf/data/"),
    ([TRAIN, "trainer=null"], "error: trainer=null: not a config; expected one of the configs in conf/trainer/"),
    ([TRAIN, "~data"], "error: data: None is not allowed; expected one of the configs in conf/data/"),
    ([TRAIN, "data.shuffle_seed=abc"], "error: data.shuffle_seed: 'abc' is not allowed; expected a whole number >= 0"),
    ([TRAIN, "data.shuffle_seed=99999999999999999999"], "error: data.shuffle_seed: 99999999999999999999 is too large"),
    ([TRAIN, "resume=~"], "error: resume=~: Hydra's override grammar cannot read '~' there; expected the value in q"),
    ([TRAIN, "hydra.run.dir={a_file}"], "error: hydra.run.dir: '{a_file}' is a file, not a folder"),
    ([TRAIN, "-m", "data=nosuch,seed"], "error: data=nosuch: no such config; expected one of csv,"),
    ([TRAIN, "lr"], "error: Error parsing override 'lr'; missing EQUAL"),
    ([TRAIN, "lr=${{nosuch}}"], "error: lr: Interpolation key 'nosuch' not found"),
    ([TRAIN, "data._target_=pathlib.Path.touch"], "error: data._target_: 'pathlib.Path.touch' is not an allowed"),
    ([TRAIN, "+model.colour=red"], "error: model.colour: linreg.models.LinearRegression takes no argument 'colour'"),
    ([TRAIN, "optimizer.momentum=-0.5"], "error: optimizer.momentum: -0.5 is not allowed; expected a number in [0, 1)"),
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
    (
        [TRAIN, "data=csv", "data.source.path={long_cell}"],
        "line 2, column 'y': 1111111111111111111111111111111111111111.",
    ),
    ([TRAIN, "data=csv", "data.source.path={long_header}", "data.source.target=p"], "yyyyyyyyy... (140000 characte"),
    ([TRAIN, "data=csv", "data.source.path={beyond_float32}"], "line 3, column 'y': 1e39 is beyond float32's range"),
    ([TRAIN, "data=csv", "data.source.path={hash_row}"], "line 3, column 'x': '#2' is not a number (a row starting"),
    ([TRAIN, "data=csv", "data.source.path={unnamed}"], "'{unnamed}' has no name for column 2 of its header row"),
    (
        [TRAIN, "data=csv", "data.source.path={ok}", "data.source.features=[x,y]"],
        "error: data.source.features: ['x', 'y'] holds the target 'y'; expected input columns other than",
    ),
    (
        [TRAIN, "data=csv", "data.source.path={ok}", "data.source.target=x", "data.source.features=y"],
        "error: data.source.features: 'y' is not allowed; expected a list of column names",
    ),
    ([TRAIN, "data=csv", "data.source.path={run}"], "error: data.source.path: '{run}' is a folder; expected a CSV"),
    ([TRAIN, "data=csv", "data.source.path={fifo}"], "'{fifo}' is not a regular file (a pipe or a device?)"),
    ([TRAIN, "data=csv", "data.source.path=/dev/zero"], "'/dev/zero' is not a regular file (a pipe or a device?)"),
    ([TRAIN, "resume={reshaped}", "iters=10"], "was trained on 2 input and 1 target column(s), but data=csv now has 1"),
    ([PREDICT, "{diverged}", "5"], "error: checkpoint: the run in '{diverged}' diverged (the loss became inf at step"),
    ([PREDICT, "{run}", "1e39"], "error: x: '1e39' is beyond float32's range; expected magnitudes below 3.4e+38"),
    ([PREDICT, "{json}", "5"], "error: checkpoint: cannot load '{json}': it is not a PyTorch checkpoint"),
    ([PREDICT, "{bare}", "5"], "error: checkpoint: '{bare}' records no model_class"),
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


# One case of each kind of refusal also runs end to end (named by its id in the table): a value the run's check
# refuses (before Lightning is imported), a mistyped key (Hydra's error, made one line), a config group set to
# null (refused before Hydra composes), a run folder that is a file (Hydra's callback), a CSV refused when the
# config check reads it (before torch's import: tests/test_early_errors.py), and a checkpoint that would run
# code when loaded (predict.py).
CASE_IDS = [" ".join(c[0][1:]) for c in CASES]
CASE_BY_ID = dict(zip(CASE_IDS, CASES, strict=True))
E2E_CASES = [
    "lr=abc",
    "lrr=0.1",
    "data=null",
    "hydra.run.dir={a_file}",
    "data=csv data.source.path={ragged}",
    "{pickle} 5",
]


def check_refused(run, folder, run_dir, diverged, reshaped, command, message):
    """`run(command, cwd=folder)` next to the run in `run_dir`: one line with `message`, exit status 2, no
    traceback, no code from a checkpoint run, and nothing written or changed, there or in `folder`."""
    files = {**make_inputs(folder, run_dir), "diverged": diverged, "reshaped": reshaped}
    command = [part.format(**files) for part in command]
    message = message.format(**files)
    before, inputs_before = snapshot(run_dir), snapshot(folder)

    result = run(command, cwd=folder)

    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not files["marker"].exists(), "the checkpoint's code ran"
    assert snapshot(run_dir) == before  # the other run is untouched
    after = snapshot(folder)
    assert {name: after[name] for name in inputs_before} == inputs_before  # the input files too
    assert [name for name in after if name not in inputs_before] == []  # not even Hydra's empty run folder
    assert not list(folder.glob("outputs/*/*"))


def in_process(command, cwd):
    return script_in_process(command[0], cwd, *command[1:])


@pytest.mark.parametrize(("command", "message"), CASES, ids=CASE_IDS)
def test_bad_input(tmp_path, existing_run, diverged_run, reshaped_csv_run, command, message):
    check_refused(in_process, tmp_path, existing_run, diverged_run[1], reshaped_csv_run, command, message)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize(("command", "message"), [CASE_BY_ID[i] for i in E2E_CASES], ids=E2E_CASES)
def test_bad_input_end_to_end(tmp_path, seed_run, diverged_run, reshaped_csv_run, command, message):
    _, run_dir = seed_run
    check_refused(run_command, tmp_path, run_dir, diverged_run[1], reshaped_csv_run, command, message)


@pytest.mark.slow
@pytest.mark.e2e
def test_hydra_full_error_shows_hydras_own_report(tmp_path):
    result = run_command(["scripts/train.py", "lrr=0.1"], cwd=tmp_path, HYDRA_FULL_ERROR="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "Could not override 'lrr'" in result.stderr


def test_a_diverged_run_prints_its_numbers_readably(diverged_run):
    result, _ = diverged_run
    (learned,) = [line for line in result.stdout.splitlines() if line.startswith("w = ")]
    assert re.fullmatch(r"w = -?\d\.\d\de\+\d+, b = -?\d\.\d\de\+\d+", learned), learned
    assert "diverged at step" in result.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_a_run_prints_no_library_warnings(tmp_path):
    # PYTHONWARNINGS="": Python's own default, as a user's shell has it (run_command silences warnings)
    result = run_command(["scripts/train.py", "logger=csv", "iters=2"], cwd=tmp_path, PYTHONWARNINGS="")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.slow
@pytest.mark.e2e
def test_help_shows_the_projects_keys_groups_and_examples(tmp_path):
    result = run_command(["scripts/train.py", "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cfg = compose_config()
    for key in TOP_LEVEL_KEYS:
        if key not in GROUPS and key != "resume":
            assert f"{key}={cfg[key]}" in result.stdout  # the default, read from conf/train.yaml
    assert "resume=<a run folder to continue>" in result.stdout
    for group in (REPO / "conf").iterdir():
        if group.is_dir() and group.name != "hydra":
            options = ", ".join(sorted(p.stem for p in group.glob("*.yaml")))
            assert f"{group.name}: {options}" in result.stdout
    assert "Chosen now: data=seed model=linear optimizer=sgd trainer=cpu" in result.stdout
    examples = [line.strip() for line in result.stdout.splitlines() if line.startswith("  python scripts/train.py")]
    assert len(examples) == 3
    assert "Powered by Hydra" not in result.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_summarize_a_sweep_where_no_job_finished(tmp_path):
    for job, text in (("0", "[1, 2]"), ("1", '{"status": "failed", "error": "lr: bad"}'), ("2", '{"status": ')):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / "results.json").write_text(text)
    result = run_command(["scripts/summarize.py", str(tmp_path)], cwd=tmp_path, PYTHONWARNINGS="")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no matplotlib warning about an empty legend
    assert "best by val_mse: none, no job finished with a val_mse" in result.stdout
    assert (tmp_path / "summary.png").is_file()
