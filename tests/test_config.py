"""The config checks: every bad value is refused with one line naming the key, the value and what is expected,
by `linreg.config.check` (the run's own keys) or by the class that owns the key, when it is built."""

import pytest
import torch
from conftest import compose_config

from linreg.config import check
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
    ],
)
def test_bad_config_is_refused(overrides, message):
    with pytest.raises(InvalidInput) as error:
        check(compose_config(*overrides))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.batch_size=0"], "data.batch_size: 0 is not allowed; expected a whole number >= 1 or null"),
        (["data.shuffle=maybe"], "data.shuffle: 'maybe' is not allowed; expected true or false"),
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
    ],
)
def test_bad_data_is_refused_by_the_class_that_owns_the_key(overrides, message):
    cfg = compose_config(*overrides)
    check(cfg)
    with pytest.raises(InvalidInput) as error:
        build("data", cfg.data)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


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
