"""The suggestion for an unknown key: the nearest keys that exist in the composed config, or the group option
that has the key, read from conf/ (`linreg.suggest`); and the line a command prints for it."""

import pytest
from conftest import REPO

from linreg.config import GROUPS
from linreg.suggest import HOW_TO_LIST, known_keys, unknown_key_line


@pytest.fixture(scope="module")
def default_keys():
    return known_keys(REPO / "conf", "train", [], GROUPS)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("lrr", "expected lr=3"),
        ("itres", "expected iters=3"),
        ("seeed", "expected seed=3"),
        ("momentum", "expected optimizer.momentum=3"),
        ("model.momentum", "expected optimizer.momentum=3"),
        ("optimizer.momentun", "expected optimizer.momentum=3"),
        ("data.batchsize", "expected data.batch_size=3"),
        ("data.shufle", "expected data.shuffle=3"),
        ("n_features", "expected data=synthetic data.source.n_features=3"),
        ("data.n_features", "expected data=synthetic data.source.n_features=3"),
        ("data.source.n_features", "expected data=synthetic data.source.n_features=3"),
        ("data.source.path", "expected data=csv data.source.path=3"),
        ("betas", "expected optimizer=adam optimizer.betas=3"),
        ("model.hidden", "expected model=mlp model.hidden=3"),
        ("activation", "expected model=mlp model.activation=3"),
        ("trainer.strategy", "expected trainer=ddp trainer.strategy=3"),
        ("hydra.run.dri", "expected hydra.run.dir=3"),
    ],
)
def test_a_mistyped_key_gets_the_key_it_meant(default_keys, key, expected):
    line = unknown_key_line(key, "3", default_keys)
    assert line == f"{key}: no such key in the config; {expected}"


def test_a_new_argument_under_a_class_says_where_it_goes(default_keys):
    line = unknown_key_line("optimizer.nesterov", "true", default_keys)
    assert line == (
        "optimizer.nesterov: no such key in the config; expected one of the keys of optimizer "
        "(`python scripts/train.py --cfg job` lists them), or +optimizer.nesterov=true to pass torch.optim.SGD "
        "an argument 'nesterov' the config does not list"
    )


def test_a_top_level_key_with_nothing_near_gets_no_plus_advice(default_keys):
    line = unknown_key_line("qqqqqq", "1", default_keys)
    assert line == "qqqqqq: no such key in the config; expected one of its keys (" + HOW_TO_LIST + ")"
    assert "+" not in line


def test_the_command_s_own_group_choices_decide_what_exists():
    keys = known_keys(REPO / "conf", "train", ["data=synthetic", "data.source.n_featurs=2"], GROUPS)
    assert "data.source.n_features" in keys.existing
    line = unknown_key_line("data.source.n_featurs", "2", keys)
    assert line == "data.source.n_featurs: no such key in the config; expected data.source.n_features=2"
    assert unknown_key_line("data.source.path", "x.csv", keys).endswith("expected data=csv data.source.path=x.csv")
