"""Experiments composed from config: another model, another optimizer, callbacks and loggers added without
code, a model of the user's own, and nothing built that the allowlist does not name."""

import csv
import textwrap

import pytest
import yaml
from conftest import read_json, run_command, script_in_process, snapshot, train_command, train_in_process

from linreg.errors import InvalidInput
from linreg.targets import allowed_class, is_allowed

# The tests that share a module fixture run on one worker (xdist loadgroup); the others go wherever is free.
ONE_WORKER = pytest.mark.xdist_group("compose")


def test_the_allowlist_matches_whole_module_names(monkeypatch):
    monkeypatch.delenv("LINREG_ALLOWED_TARGETS", raising=False)
    assert is_allowed("linreg.models.MLPRegression") and is_allowed("torch.optim.Adam")
    assert is_allowed("lightning.pytorch.callbacks.EarlyStopping") and is_allowed("lightning.Trainer")
    assert not is_allowed("linregx.Model") and not is_allowed("torch.optimx.Evil") and not is_allowed("os.system")
    assert not is_allowed("lightning.Trainerx") and not is_allowed(["linreg.models.MLPRegression"])
    monkeypatch.setenv("LINREG_ALLOWED_TARGETS", " mylab.models , other.Thing")
    assert is_allowed("mylab.models.Net") and is_allowed("other.Thing") and not is_allowed("mylab.modelsx.Net")


def test_an_allowed_name_that_is_not_a_class_is_never_called():
    with pytest.raises(InvalidInput, match=r"'linreg\.record\.write' is not a class"):
        allowed_class("model._target_", "linreg.record.write")


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("mlp")
    result = train_command(
        cwd, "model=mlp", "data=synthetic", "optimizer=adam", "lr=0.01", "iters=300", run_dir=cwd / "run"
    )
    assert result.returncode == 0, result.stderr
    return cwd / "run", result


@ONE_WORKER
@pytest.mark.slow
@pytest.mark.e2e
def test_mlp_with_adam_learns_synthetic_data(mlp_run):
    run_dir, result = mlp_run
    record = read_json(run_dir / "results.json")
    assert (record["status"], record["model"], record["optimizer"], record["steps"]) == (
        "ok", "MLPRegression", "Adam", 300,
    )  # fmt: skip
    assert record["val_r2"] > 0.95  # y = 2x + noise 0.1: an MLP fits it closely
    assert "weight" not in record and "bias" not in record  # an MLP has no w and b: left out, not faked
    assert "w = " not in result.stdout and "Prediction after training" in result.stdout


@ONE_WORKER
@pytest.mark.slow
@pytest.mark.e2e
def test_mlp_run_predicts_and_resumes(mlp_run, tmp_path):
    run_dir, _ = mlp_run
    predicted = run_command(["scripts/predict.py", str(run_dir), "0.5", "-1"], cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    values = [float(line.split(" = ")[1]) for line in predicted.stdout.splitlines()]
    assert values == pytest.approx([1.0, -2.0], abs=0.15)  # the synthetic data's y = 2x
    resumed = train_command(tmp_path, f"resume={run_dir}", "iters=400", run_dir=tmp_path / "more")
    assert resumed.returncode == 0, resumed.stderr
    record = read_json(tmp_path / "more" / "results.json")
    assert (record["model"], record["optimizer"], record["steps"], record["lr"]) == ("MLPRegression", "Adam", 400, 0.01)


@pytest.mark.slow
@pytest.mark.e2e
def test_mlp_trains_on_a_csv_file(tmp_path):
    path = tmp_path / "curve.csv"
    rows = [(x / 10, (x / 10) ** 2) for x in range(-20, 21)]
    path.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in rows))
    common = ["data=csv", f"data.source.path={path}", "optimizer=adam", "lr=0.02", "iters=800"]
    mlp = train_command(tmp_path, *common, "model=mlp", run_dir=tmp_path / "mlp")
    linear = train_command(tmp_path, *common, run_dir=tmp_path / "linear")
    assert mlp.returncode == 0 and linear.returncode == 0, mlp.stderr + linear.stderr
    mlp_mse, linear_mse = (read_json(tmp_path / name / "results.json")["val_mse"] for name in ("mlp", "linear"))
    assert mlp_mse < linear_mse / 5  # y = x^2 is not a line: the MLP must do much better than the linear model


@pytest.mark.slow
@pytest.mark.e2e
def test_early_stopping_added_by_override_stops_the_run_and_the_record_says_so(tmp_path):
    early_stopping = (
        "+callbacks.early_stopping={_target_: lightning.pytorch.callbacks.EarlyStopping, "
        "monitor: val/mse, stopping_threshold: 1e-4}"
    )
    result = train_command(tmp_path, "lr=0.1", "iters=1000", early_stopping, run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    assert record["status"] == "stopped" and record["stopped_by"] == "EarlyStopping"
    assert record["steps"] % 100 == 0 and record["steps"] < 1000  # validation, hence the check, every 100 steps
    assert record["val_mse"] < 1e-4
    assert f"stopped by EarlyStopping at step {record['steps']} of 1000" in result.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_two_loggers_at_once_both_write_into_the_run_folder(tmp_path):
    result = train_command(tmp_path, "logger=[tensorboard,csv]", "iters=200", run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run"
    assert list(run_dir.glob("events.out.tfevents.*"))
    with (run_dir / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert {"loss/train", "loss/val", "final/val_mse", "final/test_mse"} <= rows[0].keys()
    assert max(int(row["step"]) for row in rows if row["loss/train"]) == 200


MODULE = """
from torch import nn

from linreg.models import Regression


class ThroughOrigin(Regression):
    '''y = w x, no bias: the notebook's first, hand-derived model.'''

    def __init__(self, in_features=1, out_features=1, optimizer=None):
        super().__init__(optimizer)
        self.network = nn.Linear(in_features, out_features, bias=False)

    def learned_parameters(self):
        return {"weight": self.network.weight.detach().tolist()}
"""


@pytest.mark.slow
@pytest.mark.e2e
def test_a_model_of_your_own_is_a_class_and_a_yaml_file(tmp_path):
    (tmp_path / "mymodels.py").write_text(MODULE)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "origin.yaml").write_text("_target_: mymodels.ThroughOrigin\n")
    command = ["scripts/train.py", "--config-dir", str(tmp_path / "conf"), "model=origin", "lr=0.01"]

    refused = run_command([*command, "hydra.run.dir=refused"], cwd=tmp_path, PYTHONPATH=str(tmp_path))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: model._target_: 'mymodels.ThroughOrigin' is not an allowed target; expected a class of linreg, "
        "torch.optim or Lightning's Trainer, loggers and callbacks, or one named in LINREG_ALLOWED_TARGETS "
        "(see the README)"
    ]

    env = {"PYTHONPATH": str(tmp_path), "LINREG_ALLOWED_TARGETS": "mymodels"}
    result = run_command([*command, "hydra.run.dir=run"], cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    assert record["model"] == "ThroughOrigin" and record["status"] == "ok"
    assert record["weight"][0][0] == pytest.approx(2.0, abs=1e-3)  # y = 2x needs no bias
    predicted = run_command(["scripts/predict.py", "run", "5"], cwd=tmp_path, **env)
    assert predicted.stdout == "f(5) = 10.000\n", predicted.stderr


MARKER_TARGET = {"_target_": "pathlib.Path.touch", "_args_": []}  # the marker's path goes into _args_


@pytest.mark.parametrize("where", ["data", "callbacks"])
def test_resume_refuses_a_saved_config_naming_a_callable_outside_the_allowlist(tmp_path, where):
    source = tmp_path / "source"
    assert train_in_process(tmp_path, "iters=5", run_dir=source).code == 0
    marker = tmp_path / "code_ran"
    saved = source / ".hydra" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    evil = {**MARKER_TARGET, "_args_": [str(marker)]}
    if where == "data":
        config["data"] = evil
    else:
        config["callbacks"]["evil"] = evil
    saved.write_text(yaml.safe_dump(config))
    before = snapshot(source)

    result = train_in_process(tmp_path, f"resume={source}", run_dir=tmp_path / "resumed")

    assert result.returncode == 2
    key = "data._target_" if where == "data" else "callbacks.evil._target_"
    assert result.stderr.strip().splitlines() == [
        f"error: {key}: 'pathlib.Path.touch' is not an allowed target; expected a class of linreg, torch.optim or "
        "Lightning's Trainer, loggers and callbacks, or one named in LINREG_ALLOWED_TARGETS (see the README)"
    ]
    assert not marker.exists(), "the saved config's callable ran"
    assert snapshot(source) == before
    assert not (tmp_path / "resumed" / "results.json").exists()


@pytest.mark.parametrize(
    "override",
    [
        "data._target_=pathlib.Path.touch",
        "+data.source.evil={_target_: pathlib.Path.touch, _args_: [{marker}]}",
        "+hydra.callbacks.evil={_target_: pathlib.Path.touch, _args_: [{marker}]}",
    ],
)
def test_an_override_naming_a_callable_outside_the_allowlist_is_refused(tmp_path, override):
    marker = tmp_path / "code_ran"
    result = train_in_process(tmp_path, override.replace("{marker}", str(marker)))
    assert result.returncode == 2
    assert "is not an allowed target" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists(), "the override's callable ran"
    assert not list(tmp_path.rglob("results.json"))


def test_the_marker_callable_really_would_create_the_file(tmp_path):
    """The refusals above can fail: unchecked, Hydra's instantiate does call the marker callable."""
    from hydra.utils import instantiate

    marker = tmp_path / "code_ran"
    instantiate({**MARKER_TARGET, "_args_": [str(marker)]})
    assert marker.exists()


@pytest.mark.slow
@pytest.mark.e2e
def test_a_config_file_of_your_own_adds_a_callback(tmp_path):
    """The YAML way to add a callback: a file in a config folder of your own that extends the default list."""
    (tmp_path / "conf" / "callbacks").mkdir(parents=True)
    (tmp_path / "conf" / "callbacks" / "patient.yaml").write_text(
        textwrap.dedent("""\
            defaults:
              - default
              - _self_
            early_stopping:
              _target_: lightning.pytorch.callbacks.EarlyStopping
              monitor: val/mse
              stopping_threshold: 1.0e-4
            """)
    )
    result = train_command(
        tmp_path, "--config-dir", str(tmp_path / "conf"), "callbacks=patient", "lr=0.1", run_dir=tmp_path / "r"
    )
    assert result.returncode == 0, result.stderr
    assert read_json(tmp_path / "r" / "results.json")["stopped_by"] == "EarlyStopping"


@pytest.mark.slow
@pytest.mark.e2e
def test_removing_a_callback_the_record_needs_is_refused(tmp_path):
    result = train_command(tmp_path, "~callbacks.loss_monitor")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: callbacks: 0 LossMonitor found; expected exactly one (conf/callbacks/default.yaml), "
        "since results.json is written from it"
    )


# Routes found by attacking the allowlist: a name written under an allowed module that imports as something
# defined elsewhere, Hydra's own callbacks, an override Hydra parses after an option, and an interpolation.
BYPASSES = [
    ("+callbacks.evil={{_target_: linreg.sweep.io.FileIO, _args_: [{marker}, w]}}", "(defined as _io.FileIO)"),
    ("+hydra.callbacks.evil={{_target_: linreg.record.Path, _args_: [{marker}]}}", "(defined as pathlib."),
    ("+hydra.callbacks.evil={{_target_: linreg.record.os.open, _args_: [{marker}, 577]}}", "is not a class"),
    ("-cn train +hydra.callbacks.evil={{_target_: pathlib.Path.touch, _args_: [{marker}]}}", "is not an allowed"),
]


def check_bypass_refused(run, tmp_path, override, message):
    """`run(cwd, *args)` runs scripts/train.py with `override`: refused in one line, and its callable never ran."""
    marker = tmp_path / "code_ran"
    marker_args = override.format(marker=marker)
    args = marker_args.split(" ", 2) if marker_args.startswith("-cn") else [marker_args]
    result = run(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(("override", "message"), BYPASSES)
def test_names_that_only_look_allowed_are_refused(tmp_path, override, message):
    check_bypass_refused(train_in_process, tmp_path, override, message)


@pytest.mark.slow
@pytest.mark.e2e
def test_an_override_after_an_option_is_refused_end_to_end(tmp_path):
    """The last route as a user's shell passes it: Hydra reads the override after `-cn train`."""
    check_bypass_refused(train_command, tmp_path, *BYPASSES[-1])


@pytest.mark.slow
@pytest.mark.e2e
def test_an_interpolation_cannot_hide_a_target_in_a_saved_config(tmp_path):
    source = tmp_path / "source"
    assert train_command(tmp_path, "iters=5", run_dir=source).returncode == 0
    marker = tmp_path / "code_ran"
    saved = source / ".hydra" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    config["model"]["extra"] = f"${{oc.create:{{_target_: pathlib.Path.touch, _args_: [{marker}]}}}}"
    saved.write_text(yaml.safe_dump(config))
    result = train_command(tmp_path, f"resume={source}", "iters=10")
    assert result.returncode == 2
    assert "error: model.extra: '${oc.create:{_target_: pathlib.Path.touch" in result.stderr
    assert "calls the resolver oc.create, which reaches outside the config" in result.stderr
    assert not marker.exists()


def test_a_checkpoint_cannot_name_a_class_that_is_not_a_model(tmp_path):
    import torch

    marker = tmp_path / "code_ran"
    popen = "linreg.data.L.pytorch.accelerators.cuda.subprocess.Popen"  # written under linreg, imports elsewhere
    cases = {
        popen: "(defined as subprocess.Popen)' is not an allowed target",
        "lightning.pytorch.callbacks.EarlyStopping": "is not a model; expected a subclass of linreg.models.Regression",
    }
    for model_class, message in cases.items():
        hparams = {"args": ["touch", str(marker)]} if model_class == popen else {}
        torch.save({"state_dict": {}, "model_class": model_class, "hyper_parameters": hparams}, tmp_path / "x.ckpt")
        result = script_in_process("scripts/predict.py", tmp_path, str(tmp_path / "x.ckpt"), "5")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not marker.exists()
