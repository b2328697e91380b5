"""The config checks: every bad value is refused with one line naming the key, the value and what is expected."""

import pytest
import torch
from conftest import compose_config

from linreg.config import validate
from linreg.errors import InvalidInput


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
        (["data.batch_size=0"], "data.batch_size: 0 is not allowed; expected a whole number >= 1 or null"),
        (["model.momentum=-0.5"], "model.momentum: -0.5 is not allowed; expected a number >= 0"),
        (["objective=accuracy"], "objective: 'accuracy' is not allowed; expected one of val_mse, val_mae, train_loss"),
        (["data=csv"], "data.path: not set; expected the path of a CSV file"),
        (["data=csv", "data.path=/nonexistent.csv"], "data.path: no such file '/nonexistent.csv'"),
        (["data=synthetic", "data.n_samples=2"], "data.n_samples: 2 is not allowed; expected a whole number >= 4"),
        (["data=synthetic", "data.weight=[1,2]"], "data.weight: 2 values given; expected 1"),
        (["data=synthetic", "data.val_fraction=1.5"], "data.val_fraction: 1.5 is not allowed"),
        (["data=synthetic", "data.val_fraction=0.5", "data.test_fraction=0.5"], "= 1; expected less than 1"),
        (["data=synthetic", "data.n_samples=100000000000"], "data.n_samples: the data needs about"),
        (["+trainer.max_epochs=3"], "trainer.max_epochs: the run sets it; expected iters=<optimizer steps> instead"),
        (["iters=${lrr}"], "iters: Interpolation key 'lrr' not found; expected a value, or ${key} naming a key"),
    ],
)
def test_bad_config_is_refused(overrides, message):
    with pytest.raises(InvalidInput) as error:
        validate(compose_config(*overrides))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides", [[], ["seed=0"], ["data=synthetic"], ["data.batch_size=2", "lr=1e-4"], ["threads=null"]]
)
def test_good_config_passes(overrides):
    validate(compose_config(*overrides))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_gpu_trainer_without_a_gpu_is_refused():
    with pytest.raises(InvalidInput, match=r"trainer.accelerator: 'gpu', but torch .* sees no CUDA GPU here"):
        validate(compose_config("trainer=gpu"))
