"""The notebook's cells, held to what the notebook printed."""

import re

import numpy as np
import pytest
import torch
from conftest import REPO, run_command

from linreg import tutorial

# Copied from the seed notebook's printed output, cell "Manually Compute ... (Numpy)".
NUMPY_PRINTED = """\
Prediction before training: f(5) = 0.000
epoch 1: w= 1.200, loss =30.00000000
epoch 3: w= 1.872, loss =0.76800019
epoch 5: w= 1.980, loss =0.01966083
epoch 7: w= 1.997, loss =0.00050332
epoch 9: w= 1.999, loss =0.00001288
epoch 11: w= 2.000, loss =0.00000033
epoch 13: w= 2.000, loss =0.00000001
epoch 15: w= 2.000, loss =0.00000000
epoch 17: w= 2.000, loss =0.00000000
epoch 19: w= 2.000, loss =0.00000000
Prediction after training: f(5) = 10.000"""

# Cell "Manually Compute Linear Regression (Torch)", whose numbers are those of lr = 0.1.
AUTOGRAD_PRINTED = """\
Prediction before training: f(5) = 0.000
epoch 1: w= 3.000, loss =30.00000000
epoch 11: w= 2.001, loss =0.00002861
epoch 21: w= 2.000, loss =0.00000000
epoch 31: w= 2.000, loss =0.00000000
epoch 41: w= 2.000, loss =0.00000000
epoch 51: w= 2.000, loss =0.00000000
epoch 61: w= 2.000, loss =0.00000000
epoch 71: w= 2.000, loss =0.00000000
epoch 81: w= 2.000, loss =0.00000000
epoch 91: w= 2.000, loss =0.00000000
Prediction after training: f(5) = 10.000"""


def test_numpy_cell_prints_what_the_notebook_printed():
    lines = tutorial.numpy_loop().lines
    assert lines[:-1] == NUMPY_PRINTED.splitlines()
    assert lines[-1].startswith("closed form (least squares): w* = 2.000; |w - w*| = ")


def test_autograd_loop_cell_prints_what_the_notebook_printed():
    lines = tutorial.autograd_loop().lines
    assert lines[:-1] == AUTOGRAD_PRINTED.splitlines()
    assert lines[-1].startswith("closed form (least squares): w* = 2.000; |w - w*| = ")


def test_autograd_loop_at_the_literal_0_01_does_not_print_the_notebook_numbers():
    # The notebook's `0.0.1` is no number; 0.01 (one reading of it) gives w = 0.300 after epoch 1, not 3.000.
    assert tutorial.autograd_loop(lr=0.01).lines[1] == "epoch 1: w= 0.300, loss =30.00000000"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_autograd_gradient_is_two_thirds_for_any_x(seed):
    out = tutorial.autograd(seed=seed)
    assert torch.allclose(out.values["grad"], torch.full((3,), 2 / 3))
    assert out.values["grad_fns"] == ["AddBackward0", "MulBackward0", "MeanBackward0"]
    assert out.lines[-1] == "tensor([0.6667, 0.6667, 0.6667])"


def test_no_grad_cell_gives_tensors_without_grad_fn():
    tensors = tutorial.no_grad(seed=0).values["tensors"]
    assert all(t.grad_fn is None and not t.requires_grad for t in tensors)


def test_accumulate_cell_zeroed_and_accumulating():
    values = tutorial.accumulate().values
    assert [g.tolist() for g in values["zeroed"]] == [[3.0] * 4] * 3
    assert [g.tolist() for g in values["accumulated"]] == [[3.0] * 4, [6.0] * 4, [9.0] * 4]


def test_hand_derived_gradient_against_autograd():
    x = np.array([1, 2, 3, 4], dtype=np.float64)
    y = 2 * x
    w = 0.7
    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    ((w_t * torch.from_numpy(x) - torch.from_numpy(y)) ** 2).mean().backward()
    true = tutorial.numpy_gradient(x, y, w * x, true_gradient=True)
    notebook = tutorial.numpy_gradient(x, y, w * x)
    assert true == pytest.approx(w_t.grad.item(), rel=1e-12)
    assert notebook == pytest.approx(len(x) * w_t.grad.item(), rel=1e-12)  # the notebook's sum: 4x


def test_numpy_cell_with_the_true_gradient_converges_more_slowly():
    notebook, true = tutorial.numpy_loop().values["w"], tutorial.numpy_loop(true_gradient=True).values["w"]
    assert abs(notebook - 2) < abs(true - 2) < 2


def test_nn_loop_is_deterministic_and_moves_toward_the_answer():
    first, second = tutorial.nn_loop(seed=7), tutorial.nn_loop(seed=7)
    assert first.lines == second.lines
    start = tutorial.nn_loop(seed=7, iters=0)
    assert abs(first.values["w"] - 2) < abs(start.values["w"] - 2)
    assert abs(first.values["f5"] - 10) < abs(start.values["f5"] - 10)
    assert first.lines[0] == "4 1"
    assert first.lines[-2].startswith("Prediction after training : f(5) = ")
    assert tutorial.nn_loop(seed=8).lines != first.lines


def test_closed_form_of_the_seed_data():
    assert tutorial.closed_form(with_bias=True) == pytest.approx((2.0, 0.0), abs=1e-12)


@pytest.mark.e2e
def test_tutorial_all_runs_every_cell(tmp_path):
    result = run_command(["scripts/tutorial.py", "all"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in tutorial.CELLS:
        assert f"## {name}\n" in result.stdout
    assert NUMPY_PRINTED in result.stdout and AUTOGRAD_PRINTED in result.stdout


@pytest.mark.e2e
def test_tutorial_single_cell_with_options(tmp_path):
    """Options other than the cell's defaults (lr 0.01, 20 iters, the notebook's summed gradient) take effect."""
    options = ["--lr", "0.001", "--iters", "6", "--true-gradient"]
    result = run_command(["scripts/tutorial.py", "numpy", *options], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert printed[0] == "## numpy" and printed[1:-1] == tutorial.numpy_loop(0.001, 6, true_gradient=True).lines
    # by hand: the true gradient at w = 0 is mean(2x·(0 - 2x)) = -30, so w = 0.001 · 30 after epoch 1 (the
    # notebook's sum would give 0.120, lr 0.01 0.300); then 2 - w shrinks by 1 - 0.001 · 15 a step, 6 steps
    assert printed[2] == "epoch 1: w= 0.030, loss =30.00000000"
    assert [line.split(":")[0] for line in printed if line.startswith("epoch")] == ["epoch 1", "epoch 3", "epoch 5"]
    assert f"Prediction after training: f(5) = {5 * (2 - 2 * 0.985**6):.3f}" in printed
    assert NUMPY_PRINTED not in result.stdout


@pytest.mark.e2e
def test_tutorial_unknown_cell_lists_the_cells(tmp_path):
    result = run_command(["scripts/tutorial.py", "nope"], cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr
    assert all(f"'{name}'" in result.stderr for name in tutorial.CELLS)


@pytest.mark.e2e
def test_tutorial_option_a_cell_does_not_take(tmp_path):
    result = run_command(["scripts/tutorial.py", "accumulate", "--lr", "0.1"], cwd=tmp_path)
    assert result.returncode == 2
    assert "cell 'accumulate' takes no --lr" in result.stderr


def test_a_diverging_cell_says_so():
    for cell, lr in ((tutorial.numpy_loop, 0.05), (tutorial.autograd_loop, 0.5), (tutorial.nn_loop, 1.0)):
        last = cell(lr=lr).lines[-1]
        assert last.startswith("diverged: the loss grew from "), last
        assert last.endswith(f"; try a smaller lr than {lr:g}")
        assert not cell().lines[-1].startswith("diverged")  # the notebook's own settings converge


@pytest.mark.e2e
def test_every_option_a_cell_lists_is_accepted(tmp_path):
    result = run_command(["scripts/tutorial.py", "accumulate", "--epochs", "2"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("tensor([3., 3., 3., 3.])") == 3  # 3, 3 zeroed; then 3, 6 accumulated
    refused = run_command(["scripts/tutorial.py", "accumulate", "--lr", "0.1"], cwd=tmp_path)
    listed = refused.stderr.rpartition("it takes: ")[2].split()
    assert listed == ["--epochs"]


def test_the_tutorial_doc_cites_only_files_of_the_repository():
    text = (REPO / "docs" / "tutorial.md").read_text()
    cited = re.findall(r"`([\w./-]+/[\w.-]+\.\w+)`", text)
    assert cited and all((REPO / path).is_file() for path in cited), cited
