"""Run and job folder names a person reads (`linreg.run_folder`): every key the user set, short values, 120
characters at most, sortable job numbers, resumed runs named after what they continue."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, read_json, train_in_process

from linreg.run_folder import MAX_NAME_OVERRIDES, job_number, readable_overrides

LONG_CSV_COMMAND = [
    f"data.source.path={REPO}/tests/data/" + "a-rather-long-folder-name-for-the-data/" * 3 + "longley.csv",
    "data=csv", "data.source.target=TOTEMP", "data.standardize=true", "data.source.val_fraction=0.25",
    "optimizer.momentum=0.9",
    "lr=0.15000000000000002", "iters=500", "seed=7",
]  # fmt: skip


def test_a_long_command_keeps_every_key_in_120_characters():
    name = readable_overrides(LONG_CSV_COMMAND)
    assert len(name) <= MAX_NAME_OVERRIDES
    for key in ("lr-0.15", "iters-500", "seed-7", "momentum-0.9", "val_fraction-0.25", "target-"):
        assert key in name, (key, name)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)  # typed unquoted in resume=<run folder>


def test_more_keys_than_a_name_holds_still_give_a_name_of_120_characters():
    keys = [f"+extra.key_number_{i}=value_{i}" for i in range(30)]
    assert len(readable_overrides(keys)) == MAX_NAME_OVERRIDES


def test_commands_cut_alike_keep_different_names():
    other = [*LONG_CSV_COMMAND[:-1], "seed=8"]
    other[0] = other[0].replace("longley.csv", "longley-copy.csv")
    names = {readable_overrides(LONG_CSV_COMMAND), readable_overrides(other)}
    assert len(names) == 2 and all(len(name) <= MAX_NAME_OVERRIDES for name in names)


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("lr=0.15000000000000002", "lr-0.15"),
        ("lr=0.04420424869770288", "lr-0.0442"),
        ("lr=1e-3", "lr-1e-3"),  # as typed where 4 digits hold it all
        ("lr=1.0", "lr-1.0"),
        ("lr=0.12345", "lr-0.1235"),
        ("lr=0.001", "lr-0.001"),
        ("iters=100000", "iters-100000"),  # an integer is never rounded
        ("data.source.path=/home/me/data/prices.csv", "data.source.path-prices.csv"),
        ("resume=outputs/runs/2026-12-07/15-00-00.000001_lr-0.1/", "continues-15-00-00.000001_lr-0.1"),
        ("model.hidden=[8,8]", "model.hidden-88"),
    ],
)
def test_values_are_shortened_as_a_person_would(override, shown):
    assert readable_overrides([override]) == shown


def test_a_sweep_job_is_named_as_hydra_names_it_less_the_path():
    assert readable_overrides(["lr=0.01", "iters=500"], assign="=", separator=",") == "iters=500,lr=0.01"
    assert "/" not in readable_overrides(["data.source.path=a/b/c.csv"], assign="=", separator=",")


@pytest.mark.parametrize(("number", "total", "shown"), [(0, 20, "00"), (9, 10, "9"), (10, 128, "010"), (3, 1, "3")])
def test_job_numbers_are_zero_padded_so_that_folders_sort(number, total, shown):
    assert job_number(number, total) == shown


def test_a_resumed_run_is_named_after_the_run_it_continues(tmp_path):
    first = train_in_process(tmp_path, "iters=20", "lr=0.1")
    assert first.code == 0, first.stderr
    (run_dir,) = (tmp_path / "outputs" / "runs").glob("*/*")
    resumed = train_in_process(tmp_path, f"resume={run_dir.relative_to(tmp_path)}", "iters=40")
    assert resumed.code == 0, resumed.stderr
    (continued,) = [path for path in (tmp_path / "outputs" / "runs").glob("*/*") if path != run_dir]
    assert continued.name.endswith(f"_continues-{run_dir.name}_iters-40"), continued.name
    assert read_json(continued / "results.json")["steps"] == 40
