"""The README's and docs/' commands for single runs, run as a user would, in the pages' order, each held to what
it wrote and to the output the page shows; and the pages themselves: the first screen, the README's length,
the links, the performance table against the bench run it came from, and every command under some test."""

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, free_port, read_json, run_command, tensorboard_server
from readme import (
    DOCS,
    README_COMMANDS,
    README_PAGES,
    README_TEXT,
    ReadmeRun,
    bash_block_of,
    run_readme_commands,
    section,
    shown_output,
)

# The tests that share a module fixture run on one worker (xdist loadgroup); the others go wherever is free.
ONE_WORKER = pytest.mark.xdist_group("readme_runs")


def is_sweep_command(command: str) -> bool:
    return command.startswith(("python scripts/train.py -m", "python scripts/summarize.py"))


# Run and held to NIST's certified coefficients by tests/test_longley.py, in its own worker.
LONGLEY_COMMANDS = [c for c in README_COMMANDS if "longley.csv" in c]
# docs/nist.md's suite: run and held to NIST's certified digits and to the page's table by tests/test_nist.py.
NIST_COMMANDS = [c for c in README_COMMANDS if "nist_suite.py" in c]
# scripts/screenshots.py runs the README's sweep and Chromium: tests/test_screenshots.py runs it on a shorter one.
SCREENSHOTS = "python scripts/screenshots.py"
TENSORBOARD = "python scripts/open_tensorboard.py"  # a server: started, read and stopped by its test
TESTED_ELSEWHERE = (SCREENSHOTS, TENSORBOARD, *LONGLEY_COMMANDS, *NIST_COMMANDS)
# Each distinct command once (tests/readme.py's run_readme_commands), in the pages' order.
RUN_COMMANDS = list(
    dict.fromkeys(
        c for c in README_COMMANDS if c.startswith("python ") and not is_sweep_command(c) and c not in TESTED_ELSEWHERE
    )
)
TORCHRUN_COMMANDS = [c for c in README_COMMANDS if c.startswith("torchrun ")]
# Commands that set environment variables first (`NAME=value python ...`): a test of their own each.
ENVIRONMENT_COMMANDS = [c for c in README_COMMANDS if re.match(r"[A-Z_]+=", c)]
FAST_TIER = '.venv/bin/python -m pytest -m "not e2e"'
# The mistakes the pages show: one line on stderr, exit status 2, no run folder.
MISTAKES = [
    "python scripts/train.py momentum=0.9",
    "python scripts/train.py lr=abc",
    "python scripts/train.py data=sed",
    "python scripts/train.py n_features=3",
]
# The commands the module fixture does not run, and the test that does.
ELSEWHERE = {
    "make train": "test_make_train_trains_the_default",
    "make test": "test_make_test_and_make_lint_are_the_suite_and_the_linter",
    "make lint": "test_make_test_and_make_lint_are_the_suite_and_the_linter",
    FAST_TIER: "test_the_fast_tier_is_every_test_but_the_e2e_ones",
    "make bench": "test_make_bench_quick_prints_ratios_and_writes_json",
    TENSORBOARD: "test_readme_tensorboard_command_serves_the_runs",
    "python scripts/train.py -m resume=outputs/multirun/<date>/<time>": "tests/test_sweep_continuation.py",
    SCREENSHOTS: "tests/test_screenshots.py",
}


# --- the pages ---------------------------------------------------------------------------------------------


def test_the_readme_shows_the_two_setup_commands_first():
    assert README_COMMANDS[:2] == ["make train", "make test"]
    lines = README_PAGES["README.md"].splitlines()
    assert next(i for i, line in enumerate(lines) if line.startswith("make test")) < 24  # on the first screen
    ci = (REPO / ".ci" / "run").read_text()
    assert "make lint" in ci and "make test" in ci and "slurm_cluster.sh start" in ci  # as Contributing says


def test_the_readme_is_read_in_five_minutes():
    assert len(README_PAGES["README.md"].splitlines()) <= 250


def test_every_docs_page_is_in_the_readmes_table():
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", section("README.md", "Documentation")))
    assert {str(page.relative_to(REPO)) for page in DOCS.glob("*.md")} <= linked


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a page's headings (code blocks left out)."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-") for heading in headings}


def test_every_link_and_picture_of_the_pages_resolves():
    for name, text in README_PAGES.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            file = (REPO / name).parent.joinpath(path).resolve() if path else REPO / name
            if file == DOCS / "architecture.md" and not file.exists():
                continue  # written in a change of its own; linked from the README's table meanwhile
            assert file.is_file(), f"{name}: {target}"
            if anchor:
                assert anchor in anchors(file.read_text()), f"{name}: {target}"


def test_every_command_of_the_readme_and_docs_is_covered():
    sweeps = [c for c in README_COMMANDS if is_sweep_command(c) or c.startswith("pip install")]  # test_readme_sweeps
    environment = ENVIRONMENT_COMMANDS  # test_a_class_of_your_own_trains_once_allowed, which expects one
    covered = {*RUN_COMMANDS, *TORCHRUN_COMMANDS, *sweeps, *LONGLEY_COMMANDS, *NIST_COMMANDS, *environment, *ELSEWHERE}
    assert set(README_COMMANDS) <= covered, set(README_COMMANDS) - covered
    assert all(test in globals() for test in ELSEWHERE.values() if test.startswith("test_"))
    assert set(ELSEWHERE) <= set(README_COMMANDS)  # no test for a command the pages no longer show
    # each single-run command is checked for what it wrote, not only for its exit status
    assert set(RUN_COMMANDS) - set(MISTAKES) <= set(CHECKS), set(RUN_COMMANDS) - set(MISTAKES) - set(CHECKS)
    assert set(CHECKS) | set(MISTAKES) <= set(RUN_COMMANDS)


def test_the_model_example_is_the_shipped_code():
    """ "Your own model" shows the MLP's class and YAML file as they are in the project, not a drifted copy."""
    text = section("docs/configuration.md", "Your own model")
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    (config,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert code in (REPO / "src" / "linreg" / "models.py").read_text()
    assert config in (REPO / "conf" / "model" / "mlp.yaml").read_text()


def _number(cell: str) -> float:
    """The first number of a table cell, in its base unit (M/s: millions a second)."""
    value = float(re.search(r"-?\d[\d,]*\.?\d*", cell).group().replace(",", ""))
    return value * 1e6 if "M/s" in cell else value


def test_the_performance_figures_are_those_of_the_bench_run_they_name():
    """The table is `make bench`'s, row for row from benchmarks/results/full.json; so are the growth figures
    and the peak memory that docs/scaling.md quotes."""
    run = json.loads((REPO / "benchmarks" / "results" / "full.json").read_text())
    lines = section("docs/performance.md", "The figures").splitlines()
    table = [line.strip("|").split("|") for line in lines if line.startswith("| ") and "comparison" not in line]
    assert len(table) == len(run["rows"])
    for (name, project, baseline, ratio, _target), row in zip(table, run["rows"], strict=True):
        assert _number(project) == pytest.approx(row["project"], rel=1e-3), name
        assert _number(baseline) == pytest.approx(row["baseline"], rel=1e-3), name
        assert _number(ratio) == pytest.approx(row["ratio"], abs=0.006), name
    iters, samples = run["growth"]["iters"], run["growth"]["samples"]
    assert (
        f"about {iters['per_unit'] * 1e3:.2f} ms per step and {iters['fixed']:.2f} s fixed (R^2 {iters['r2']:.3f}); "
        f"{samples['per_unit'] * 1e6:.2f} microseconds per sample and {samples['fixed']:.2f} s fixed "
        f"(R^2 {samples['r2']:.2f}"
    ) in " ".join(README_PAGES["docs/performance.md"].split())
    memory = next(row for row in run["rows"] if row["name"].startswith("peak memory"))
    assert f"train in {memory['project']:.0f} MiB at most" in " ".join(README_PAGES["docs/scaling.md"].split())


# --- the single runs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("readme_runs")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    y = x @ [1.0, -1.0] + 0.5
    np.savetxt(cwd / "my.csv", np.column_stack([x, y]), delimiter=",", header="a,b,y", comments="")
    return cwd


@pytest.fixture(scope="module")
def readme(workdir):
    """Every single-run command of the pages, run once in their order (later ones use earlier runs)."""
    return run_readme_commands(RUN_COMMANDS, workdir, "runs")


CHECKS: dict[str, Callable[[ReadmeRun, Path], None]] = {}


def checks(*commands: str):
    """Register a check of what `commands` wrote and printed (test_readme_command runs it)."""

    def register(function):
        CHECKS.update(dict.fromkeys(commands, function))
        return function

    return register


def record_of(run: ReadmeRun, workdir: Path, status: str = "ok") -> dict:
    """The run's results.json, once its status and the printed folder are the ones expected."""
    assert run.new_folder, "no new run folder"
    assert f"run folder: {run.folder.relative_to(workdir)}" in run.result.stdout
    record = read_json(run.folder / "results.json")
    assert record["status"] == status, record
    return record


def timeless(line: str) -> str:
    """A summary line less what differs from run to run: the seconds and the run folder's name."""
    return re.sub(r"run folder: .*", "run folder: ...", re.sub(r"\(\d+\.\d+ s\)", "(... s)", line))


@checks("python scripts/train.py lr=0.1")
def _the_summary_the_readme_shows(run, workdir):
    record = record_of(run, workdir)
    shown = shown_output("python scripts/train.py lr=0.1")
    assert [timeless(line) for line in run.result.stdout.splitlines()[-len(shown) :]] == list(map(timeless, shown))
    assert record["steps"] == 1000 and record["weight"] == [[pytest.approx(2.0, abs=1e-6)]]
    assert {"checkpoints/last.ckpt", ".hydra/config.yaml", "fit.png"} <= {
        str(p.relative_to(run.folder)) for p in run.folder.rglob("*")
    } and list(run.folder.glob("events.out.tfevents.*"))  # the folder the README describes


@checks("python scripts/train.py data=synthetic data.source.n_features=3 data.source.noise=0.5")
def _three_synthetic_features(run, workdir):
    record = record_of(run, workdir)
    assert record["data"] == "synthetic" and np.shape(record["weight"]) == (1, 3)
    assert record["val_r2"] > 0.9  # 2.0 for every feature, noise 0.5


@checks("python scripts/train.py model=mlp data=synthetic optimizer=adam lr=0.01")
def _an_mlp_with_adam(run, workdir):
    record = record_of(run, workdir)
    assert (record["model"], record["optimizer"]) == ("MLPRegression", "Adam") and "weight" not in record


@checks("python scripts/train.py data.batch_size=2 logger=csv")
def _mini_batches_and_a_csv_log(run, workdir):
    record = record_of(run, workdir)
    assert record["batch_size"] == 2 and record["steps"] == 1000
    assert (run.folder / "metrics.csv").is_file() and not list(run.folder.glob("events.out.tfevents.*"))


@checks("python scripts/train.py lr=0.1 iters=500 seed=0")
def _five_hundred_steps_seed_0(run, workdir):
    record = record_of(run, workdir)
    assert (record["steps"], record["seed"]) == (500, 0)
    assert "Prediction after training: f(5) = 10.000" in run.result.stdout


@checks("python scripts/train.py --help")
def _the_help_lists_keys_and_groups(run, workdir):
    assert not run.new_folder
    assert "lr=0.001  iters=1000" in run.result.stdout  # the defaults the README states
    for group in ("data: csv, seed, synthetic", "model: linear, mlp", "optimizer: adam, sgd"):
        assert group in run.result.stdout.splitlines()
    assert "trainer: cpu, ddp, gpu" in run.result.stdout and "logger: csv, none, tensorboard" in run.result.stdout


@checks("python scripts/predict.py outputs/runs/<date>/<time> 5")
def _the_prediction_the_readme_shows(run, workdir):
    assert run.result.stdout == "f(5) = 10.000\n" and "prints `f(5) = 10.000`" in README_TEXT


@checks("python scripts/train.py data=csv data.source.path=my.csv data.source.target=y lr=0.1 iters=500")
def _your_own_csv(run, workdir):  # my.csv: y = a - b + 0.5 exactly; standardized, reported in the data's units
    record = record_of(run, workdir)
    assert record["standardize"] is True and record["steps"] == 500
    np.testing.assert_allclose(record["weight"], [[1.0, -1.0]], atol=1e-4)
    assert record["bias"][0] == pytest.approx(0.5, abs=1e-4)


@checks("python scripts/tutorial.py all")
def _the_six_cells_in_order(run, workdir):
    cells = re.findall(r"^\| `([\w-]+)` \|", README_PAGES["docs/tutorial.md"], re.M)
    assert len(cells) == 6
    assert re.findall(r"^## ([\w-]+)$", run.result.stdout, re.M) == cells


@checks("python scripts/tutorial.py numpy --true-gradient")
def _the_true_gradient_converges_more_slowly(run, workdir):
    epochs = re.findall(r"^epoch (\d+): w= ([\d.]+)", run.result.stdout, re.M)
    assert epochs[-1][0] == "19" and 1.5 < float(epochs[-1][1]) < 1.99  # 20 iterations, w not yet 2.000


@checks("python scripts/tutorial.py nn-loop --lr 0.01 --iters 300 --seed 0")
def _the_cell_takes_its_options(run, workdir):
    assert re.findall(r"^epoch (\d+):", run.result.stdout, re.M) == ["1", "101", "201"]  # a line every 100 of 300


@checks("python scripts/tutorial.py nn-loop", "python scripts/train.py")
def _the_last_cell_and_the_experiment_agree(run, workdir):
    assert "Both print `Prediction before training: f(5) = 4.653` and end at `f(5) = 9.418`." in README_TEXT
    assert "Prediction before training: f(5) = 4.653" in run.result.stdout
    assert run.result.stdout.count("f(5) = 9.418") == 1


@checks("python scripts/train.py --cfg job")
def _the_composed_config(run, workdir):
    config = yaml.safe_load(run.result.stdout)
    assert (config["lr"], config["iters"]) == (0.001, 1000) and not run.new_folder
    assert {"data", "model", "optimizer", "trainer", "callbacks", "logger"} <= config.keys()


@checks(
    "python scripts/train.py lr=0.1 '+callbacks.early_stopping={_target_: lightning.pytorch.callbacks.EarlyStopping, "
    "monitor: val/mse, stopping_threshold: 1e-4}'"
)
def _early_stopping(run, workdir):
    record = record_of(run, workdir, status="stopped")
    assert record["stopped_by"] == "EarlyStopping" and record["steps"] < 1000 and record["steps"] % 100 == 0


@checks("python scripts/train.py optimizer.momentum=0.9 'logger=[tensorboard,csv]'")
def _two_loggers(run, workdir):
    record_of(run, workdir)
    assert (run.folder / "metrics.csv").is_file() and list(run.folder.glob("events.out.tfevents.*"))
    assert yaml.safe_load((run.folder / ".hydra" / "config.yaml").read_text())["optimizer"]["momentum"] == 0.9


@checks("python scripts/train.py lr=0.01")
def _the_run_to_resume(run, workdir):
    record = record_of(run, workdir)
    assert (record["lr"], record["steps"]) == (0.01, 1000)


@checks("python scripts/train.py resume=outputs/runs/<date>/<time> iters=2000")
def _the_resumed_run(run, workdir):
    record = record_of(run, workdir)
    assert (record["lr"], record["steps"]) == (0.01, 2000)  # the config it started with
    (first,) = [p.parent for p in (workdir / "outputs" / "runs").glob("*/*/results.json")
                if read_json(p)["overrides"] == {"lr": "0.01"}]  # fmt: skip
    assert record["resumed_from"] == str((first / "checkpoints" / "last.ckpt").relative_to(workdir))


@checks("python scripts/train.py trainer=ddp lr=0.1 iters=500 seed=0")
def _two_processes(run, workdir):  # their weights: test_readme_ddp_run_equals_the_single_process_run
    record = record_of(run, workdir)
    assert (record["processes"], record["steps"]) == (2, 500)


@checks("python scripts/train.py lr=1.0")
def _divergence_is_a_result(run, workdir):
    record = record_of(run, workdir, status="diverged")
    assert record["diverged_at_step"] == 17 and record["above_stability_limit"] is True
    (warning,) = shown_output("python scripts/train.py lr=1.0")
    assert warning in run.result.stderr.splitlines()
    (diverged,) = [line for line in run.result.stdout.splitlines() if line.startswith("diverged at")]
    assert f"```text\n{diverged}\n```" in README_PAGES["docs/hard-cases.md"]


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in RUN_COMMANDS if c not in MISTAKES])
def test_readme_command(command, readme, workdir):
    run = readme[command]
    assert run.result.returncode == 0, f"{command}\n{run.result.stderr}"
    CHECKS[command](run, workdir)


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("command", MISTAKES)
def test_readme_mistake_is_one_line_and_exit_status_2(command, readme):
    run = readme[command]
    assert run.result.returncode == 2 and run.result.stdout == "" and not run.new_folder
    (line,) = run.result.stderr.splitlines()
    if len(bash_block_of(command)) == 1:
        assert f"prints `{line}`" in README_TEXT
    else:  # one line of the text block below, for each command of the block
        assert shown_output(command)[bash_block_of(command).index(command)] == line


@pytest.mark.e2e
@pytest.mark.slow
def test_a_class_of_your_own_trains_once_allowed(tmp_path):
    """The page's mymodels.py and myconf/model/mine.yaml, written as shown, and its command: the class is built
    from outside the package once the environment allows it, and refused without."""
    (command,) = ENVIRONMENT_COMMANDS
    text = section("docs/configuration.md", "A class of your own: `LINREG_ALLOWED_TARGETS`")
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    (config,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    (tmp_path / "mymodels.py").write_text(code)
    (tmp_path / "myconf" / "model").mkdir(parents=True)
    (tmp_path / "myconf" / "model" / "mine.yaml").write_text(config)
    words = shlex.split(command)
    start = words.index("python")
    env = dict(word.split("=", 1) for word in words[:start])
    # and wherever this test's environment finds the project (an installed one needs nothing more)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env["PYTHONPATH"], os.environ.get("PYTHONPATH")]))
    result = run_command(words[start + 1 :], cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "outputs" / "runs").glob("*/*")
    record = read_json(run / "results.json")
    assert (record["status"], record["model"]) == ("ok", "TwoLayers")
    refused = run_command(words[start + 1 :], cwd=tmp_path, **{**env, "LINREG_ALLOWED_TARGETS": ""})
    assert refused.returncode == 2 and "is not an allowed target" in refused.stderr, refused.stderr


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.slow
def test_readme_ddp_run_equals_the_single_process_run(readme, workdir):
    records = [read_json(p) for p in (workdir / "outputs" / "runs").glob("*/*/results.json")]
    single = [r for r in records if r["overrides"] == {"lr": "0.1", "iters": "500", "seed": "0"}]
    ddp = [r for r in records if r["overrides"].get("trainer") == "ddp"]
    assert len(single) == len(ddp) == 1
    assert ddp[0]["weight"][0][0] == pytest.approx(single[0]["weight"][0][0], abs=1e-5)
    assert ddp[0]["bias"][0] == pytest.approx(single[0]["bias"][0], abs=1e-5)
    assert ddp[0]["train_loss"] == pytest.approx(single[0]["train_loss"], rel=1e-4, abs=1e-9)


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.slow
def test_readme_torchrun_command_on_two_nodes_equals_the_single_process_run(readme, workdir, tmp_path):
    """The two-machine command, started twice here (`HEAD=127.0.0.1`): one run, one folder, one process's weights."""
    (command,) = TORCHRUN_COMMANDS
    line = command.replace("$HEAD:29500", f"127.0.0.1:{free_port()}").replace("scripts/", f"{REPO}/scripts/")
    torchrun = [str(Path(sys.executable).with_name("torchrun")), *shlex.split(line)[1:]]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    nodes = [subprocess.Popen(torchrun, cwd=tmp_path, env=env, **pipes) for _ in range(2)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    (run,) = (tmp_path / "outputs" / "runs").glob("*/*")  # both ranks, one run folder
    assert sum(f"run folder: {run.relative_to(tmp_path)}" in out for out, _ in outputs) == 1  # rank 0 prints
    record = read_json(run / "results.json")
    (single,) = [r for r in map(read_json, (workdir / "outputs" / "runs").glob("*/*/results.json"))
                 if r["overrides"] == {"lr": "0.1", "iters": "500", "seed": "0"}]  # fmt: skip
    assert record["status"] == "ok" and record["steps"] == 500
    assert record["weight"][0][0] == pytest.approx(single["weight"][0][0], abs=1e-5)
    assert record["bias"][0] == pytest.approx(single["bias"][0], abs=1e-5)
    assert record["train_loss"] == pytest.approx(single["train_loss"], rel=1e-4, abs=1e-9)


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.slow
def test_readme_tensorboard_command_serves_the_runs(readme, workdir):
    """`python scripts/open_tensorboard.py outputs` on the README's runs (its default: tests/test_dashboard.py)."""
    script = [sys.executable, str(REPO / "scripts" / "open_tensorboard.py"), "outputs"]
    with tensorboard_server(workdir / "outputs", command=script, cwd=workdir) as api:
        runs = api("/data/runs")
    assert len([run for run in runs if run.startswith("runs/")]) >= 5


# --- make ----------------------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
def test_make_train_trains_the_default(tmp_path):
    result = subprocess.run(
        ["make", "train", f"ARGS=hydra.run.dir={tmp_path}/run"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    assert (record["lr"], record["iters"], record["data"]) == (0.001, 1000, "seed")
    shown = "`make train` ends with `Prediction after training: f(5) = 9.418`"  # the seeded nn-loop cell's number
    assert shown in README_TEXT and "Prediction after training: f(5) = 9.418" in result.stdout


@pytest.mark.e2e
def test_make_test_and_make_lint_are_the_suite_and_the_linter():
    """What Contributing says they run (CI runs both for real)."""
    for target, expected in [("test", "-m pytest"), ("lint", "-m ruff check ."), ("lint", "-m ruff format --check .")]:
        make = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=True)
        assert expected in make.stdout, make.stdout


@pytest.mark.e2e
def test_the_fast_tier_is_every_test_but_the_e2e_ones():
    """The fast tier's command selects every test of the suite that is not marked e2e (none of which starts a
    process, tests/conftest.py): what it leaves out is counted as deselected, and this e2e test is among them."""
    command = shlex.split(FAST_TIER)
    if not (REPO / command[0]).exists():
        command[0] = sys.executable  # a checkout whose environment lives elsewhere: the same interpreter
    result = subprocess.run(
        [*command, "--collect-only", "-q", "-n", "0"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fast = {line for line in result.stdout.splitlines() if "::" in line}
    (counts,) = re.findall(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", result.stdout)
    selected, total, deselected = map(int, counts)
    assert len(fast) == selected and selected + deselected == total and deselected > 0
    here = "tests/test_readme_runs.py::"
    assert f"{here}test_the_readme_is_read_in_five_minutes" in fast
    assert f"{here}test_the_fast_tier_is_every_test_but_the_e2e_ones" not in fast
    assert not any("test_readme_command[" in test for test in fast)  # the README's commands are e2e


@pytest.mark.e2e
@pytest.mark.slow
def test_make_bench_quick_prints_ratios_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    # step_cost runs in this interpreter's environment only: .venv-lean (a minute of pip, the recipe that built
    # .venv) is left to the benchmarks that use it, whole_run and sweeps.
    result = subprocess.run(
        ["make", "bench", "LEAN_VENV=.venv", f"ARGS=--quick --only step_cost --out {out}"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cost per step, seed data, logging on" in result.stdout and "ratio" in result.stdout
    assert "| comparison | project | baseline | ratio | target |" in result.stdout  # the table docs/ shows
    rows = json.loads(out.read_text())["rows"]
    assert {row["name"] for row in rows} >= {"cost per step, seed data, logging on"}
    assert all(row["project"] > 0 and row["baseline"] > 0 for row in rows)
