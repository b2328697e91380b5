"""The config checks: every bad value is refused with one line naming the key, the value and what is expected,
by `linreg.config.check` (the run's own keys) or by the class that owns the key, when it is built."""

import os
import re

import pytest
import torch
from conftest import compose_config

from linreg.config import TOP_LEVEL_KEYS, check
from linreg.errors import InvalidInput
from linreg.targets import build


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["lr=abc"], "lr: 'abc' is not a number; expected a finite number"),
        (["lr=-1"], "lr: -1 is not allowed; expected a number > 0"),
        (["lr=0"], "lr: 0 is not allowed; expected a number > 0"),
        (["lr=nan"], "lr: nan is not a number"),
        (["lr=true"], "lr: True is not a number"),
        (["iters=0"], "iters: 0 is not allowed; expected a whole number >= 1"),
        (["iters=2.5"], "iters: 2.5 is not allowed; expected a whole number >= 1"),
        (["seed=-1"], "seed: -1 is not allowed; expected a whole number >= 0"),
        (["seed=4294967296"], "seed: 4294967296 is too large"),
        (["threads=0"], "threads: 0 is not allowed; expected a whole number >= 1 or null"),
        (["optimizer.lr=-1"], "optimizer.lr: -1 is not allowed; expected a number > 0"),
        (["objective=accuracy"], "objective: 'accuracy' is not allowed; expected one of val_mse, val_mae, train_loss"),
        (["+trainer.max_epochs=3"], "trainer.max_epochs: the run sets it; expected iters=<optimizer steps> instead"),
        (["iters=${lrr}"], "iters: Interpolation key 'lrr' not found; expected a value, or ${key} naming a key"),
        (["~data"], "data: None is not allowed; expected one of the configs in conf/data/"),
        (["~optimizer"], "optimizer: None is not allowed; expected one of the configs in conf/optimizer/"),
        (["model._target_=os.getcwd"], "model._target_: 'os.getcwd' is not an allowed target; expected a class of"),
        (["data.source._target_=linregx.Data"], "data.source._target_: 'linregx.Data' is not an allowed target"),
        (["+model.net={_target_:subprocess.Popen}"], "model.net._target_: 'subprocess.Popen' is not an allowed"),
        (["+lrr=0.1"], "lrr: 0.1 is read by nothing (+lrr added a key the run does not use); expected lr=..."),
        (["+data_seed=3"], "data_seed: 3 is read by nothing"),
        (
            ["+momentum=0.9"],
            "momentum: 0.9 is read by nothing (+momentum added a key the run does not use); expected "
            "optimizer.momentum=...",
        ),
        (["lr=1e308"], "lr: 1e+308 is beyond float32's range; expected a magnitude below 3.4e+38"),
        (["optimizer.lr=1e39"], "optimizer.lr: 1e+39 is beyond float32's range"),
        (["optimizer.momentum=1.5"], "optimizer.momentum: 1.5 is not allowed; expected a number in [0, 1)"),
        (["optimizer.momentum=1"], "optimizer.momentum: 1 is not allowed; expected a number in [0, 1)"),
        (["optimizer.momentum=-0.5"], "optimizer.momentum: -0.5 is not allowed; expected a number in [0, 1)"),
        (["optimizer.momentum=fast"], "optimizer.momentum: 'fast' is not a number"),
        (
            ["+callbacks.es={_target_: lightning.pytorch.callbacks.EarlyStopping, monitor: nosuch}"],
            "callbacks.es.monitor: 'nosuch' is not a metric the run logs; expected one of val/mse, val/mae, val/r2",
        ),
    ],
)
def test_bad_config_is_refused(overrides, message):
    with pytest.raises(InvalidInput) as error:
        check(compose_config(*overrides))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "message", "before_torch"),
    [
        (["data.batch_size=0"], "data.batch_size: 0 is not allowed; expected a whole number >= 1 or null", True),
        (["data.shuffle=maybe"], "data.shuffle: 'maybe' is not allowed; expected true or false", True),
        (["data.standardize=1"], "data.standardize: 1 is not allowed; expected true, false or whiten", True),
        (["+data.n_features=3"], "data.n_features: linreg.data.RegressionDataModule takes no argument", False),
    ],
)
def test_bad_data_is_refused_by_the_class_that_owns_the_key(overrides, message, before_torch):
    """The DataModule refuses its own bad settings (built from Python too); the config check says the same line
    first, before torch's import, for those it can read without building anything."""
    cfg = compose_config(*overrides)
    if before_torch:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            check(cfg)
    else:
        check(cfg)
    with pytest.raises(InvalidInput) as error:
        build("data", cfg.data)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=csv"], "data.source.path: not set; expected the path of a CSV file"),
        (["data=csv", "data.source.path=/nonexistent.csv"], "data.source.path: no such file '/nonexistent.csv'"),
        (["data=csv", "data.source.path=/etc/hostname", "data.source.features=a"], "data.source.features: 'a' is"),
        (["data=synthetic", "data.source.n_samples=2"], "data.source.n_samples: 2 is not allowed; expected a whole"),
        (["data=synthetic", "data.source.weight=[1,2]"], "data.source.weight: [1, 2] is not allowed; expected 1"),
        (["data=synthetic", "data.source.val_fraction=1.5"], "data.source.val_fraction: 1.5 is not allowed"),
        (["data=synthetic", "data.source.val_fraction=0.5", "data.source.test_fraction=0.5"], "= 1; expected less"),
        (["data=synthetic", "data.source.n_samples=100000000000"], "data.source.n_samples: the data needs about"),
        (["data=synthetic", "data.source.data_seed=99999999999999999999"], "data.source.data_seed: 9999"),
        (["data=synthetic", "+data.source.colour=1"], "data.source.colour: linreg.sources.SyntheticData takes no"),
        (["data=synthetic", "data.source.bias=1e39"], "data.source.bias: 1e+39 is beyond float32's range"),
        (["data=synthetic", "data.source.weight=[1e39]"], "data.source.weight: 1e+39 is beyond float32's range"),
        (
            [
                "data=synthetic",
                "data.source.n_samples=4",
                "data.source.val_fraction=0.5",
                "data.source.test_fraction=0.4",
            ],
            "data.source.n_samples: 4 rows are too few to split into train, validation (2 rows at least) and test",
        ),
    ],
)
def test_a_bad_source_is_refused_by_the_config_check(overrides, message):
    """The source is built by `check` (before torch's import), so its own checks answer there; building it
    again, as the run's DataModule does, says the same."""
    cfg = compose_config(*overrides)
    with pytest.raises(InvalidInput) as error:
        check(cfg)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(InvalidInput, match=re.escape(str(error.value))):
        build("data.source", cfg.data.source)


@pytest.mark.parametrize(
    "overrides", [[], ["seed=0"], ["data=synthetic"], ["data.batch_size=2", "lr=1e-4"], ["threads=null"]]
)
def test_good_config_passes(overrides):
    cfg = compose_config(*overrides)
    check(cfg)
    assert build("data", cfg.data).n_features == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_gpu_trainer_without_a_gpu_is_refused():
    with pytest.raises(InvalidInput, match=r"trainer.accelerator: 'gpu', but torch .* sees no CUDA GPU here"):
        check(compose_config("trainer=gpu"))


def test_the_top_level_keys_a_run_reads_are_those_of_train_yaml():
    assert set(compose_config().keys()) == set(TOP_LEVEL_KEYS)


def test_an_added_key_that_an_interpolation_reads_is_kept():
    cfg = compose_config("+base_lr=0.01", "lr=${base_lr}")
    check(cfg)
    assert cfg.optimizer.lr == 0.01


def test_sgd_momentum_just_below_one_is_allowed():
    check(compose_config("optimizer.momentum=0.99"))


# CSV files that only the data itself can refuse: read when the config check builds the source.
LONG = "1" * 140_000  # a cell over the csv module's 128 KiB field limit
CSV_FILES = {
    "long_cell.csv": f"x,y\n1,{LONG}\n2,3\n3,4\n4,5\n5,6\n6,7\n",
    "long_header.csv": f"x,{'y' * 140_000}\n1,2\n2,3\n3,4\n4,5\n5,6\n6,7\n",
    "f32.csv": "x,y\n1,2\n2,1e39\n3,4\n4,5\n5,6\n6,7\n",
    "hash.csv": "x,y\n1,2\n#2,3\n3,4\n4,5\n5,6\n6,7\n",
    "unnamed.csv": "x,\n1,2\n2,3\n3,4\n4,5\n5,6\n6,7\n",
    "ok.csv": "x,price\n1,2\n2,4\n3,6\n4,8\n5,10\n6,12\n",
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=csv", "data.source.path={tmp}/long_cell.csv"], "line 2, column 'y': 11111"),
        (["data=csv", "data.source.path={tmp}/long_header.csv", "data.source.target=price"], "(140000 characters)"),
        (["data=csv", "data.source.path={tmp}/f32.csv"], "line 3, column 'y': 1e39 is beyond float32's range"),
        (["data=csv", "data.source.path={tmp}/hash.csv"], "line 3, column 'x': '#2' is not a number (a row starting"),
        (["data=csv", "data.source.path={tmp}/unnamed.csv"], "has no name for column 2 of its header row"),
        (
            ["data=csv", "data.source.path={tmp}/ok.csv", "data.source.features=[x,price]"],
            "data.source.features: ['x', 'price'] holds the target 'price'; expected input columns other than",
        ),
    ],
)
def test_bad_data_is_refused_when_the_config_check_reads_it(tmp_path, overrides, message):
    for name, text in CSV_FILES.items():
        (tmp_path / name).write_text(text)
    cfg = compose_config(*(o.format(tmp=tmp_path) for o in overrides))
    with pytest.raises(InvalidInput) as error:
        check(cfg)
    assert message in str(error.value)
    assert "\n" not in str(error.value) and len(str(error.value)) < 400


def test_a_batch_larger_than_the_training_rows_is_refused_when_the_data_is_read():
    cfg = compose_config("data.batch_size=100")
    check(cfg)
    datamodule = build("data", cfg.data)
    with pytest.raises(InvalidInput, match=r"data.batch_size: 100 is larger than the 4 training rows of data=seed"):
        _ = datamodule.splits


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("{tmp}", "data.source.path: '{tmp}' is a folder; expected a CSV file with a header row"),
        ("{tmp}/fifo.csv", "data.source.path: '{tmp}/fifo.csv' is not a regular file (a pipe or a device?)"),
        ("/dev/zero", "data.source.path: '/dev/zero' is not a regular file (a pipe or a device?)"),
    ],
)
def test_a_csv_path_that_is_no_file_says_what_it_is(tmp_path, path, message):
    os.mkfifo(tmp_path / "fifo.csv")
    cfg = compose_config("data=csv", f"data.source.path={path.format(tmp=tmp_path)}")
    with pytest.raises(InvalidInput, match=re.escape(message.format(tmp=tmp_path))):
        check(cfg)


def test_a_setting_lightning_refuses_only_while_running_is_one_line(tmp_path):
    """Lightning checks some settings only during the fit (EarlyStopping at a training epoch's end, before any
    validation has logged its metric): its refusal is one line and exit status 2."""
    from conftest import train_in_process

    early = (
        "+callbacks.es={_target_: lightning.pytorch.callbacks.EarlyStopping, monitor: val/mse, "
        "check_on_train_epoch_end: true}"
    )
    rare_validation = ["iters=20", "data.batch_size=1", "trainer.val_check_interval=1000", "logger=none"]
    answer = train_in_process(tmp_path, *rare_validation, early, run_dir=tmp_path / "r")
    assert answer.code == 2
    assert answer.stderr.startswith("error: trainer: Lightning stopped the run: Early stopping conditioned on metric")
    assert len(answer.stderr.strip().splitlines()) == 1
