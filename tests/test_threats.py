"""Overrides, run folders and CSV files are data, never code (docs/security.md): each payload points at a victim
file inside the test's folder, and the test checks that its bytes are unchanged, that no marker appeared, the
exit status and the one line. The many payloads run against the check that refuses them, or through the real
scripts/train.py in the test process; a few run end to end."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import read_json, run_command, snapshot, train_in_process

from linreg import record
from linreg.config import check
from linreg.errors import InvalidInput
from linreg.overrides import refuse_bad_overrides
from linreg.sources import CsvData

LAMBDA = "lightning.pytorch.callbacks.LambdaCallback"


def write_text_payload(victim: Path, text: str = "PWNED") -> str:
    """oc.create building a node whose _target_ writes `text` into `victim` when it is instantiated."""
    path = f"{{_target_: pathlib.Path, _args_: [{victim}]}}"
    return f"${{oc.create:{{_target_: pathlib.Path.write_text, _args_: [{path}, {text}]}}}}"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    file = tmp_path / "victim.txt"
    file.write_text("the user's own bytes\n")
    return file


def assert_untouched(victim: Path, *markers: Path) -> None:
    assert victim.read_text() == "the user's own bytes\n"
    assert not any(marker.exists() for marker in markers)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# Each payload of the issue, and more of the same families, as the command line gives them to the check.
REFUSED_OVERRIDES = [
    # an escaped interpolation that Hydra's instantiate would bring to life
    ("+callbacks.x={{_target_: " + LAMBDA + ", on_exception: '\\{payload}'}}", "escaped interpolation"),
    ("+trainer.plugins=['\\{payload}']", "escaped interpolation"),
    ("hydra.run.dir='outputs/\\${{oc.env:HOME}}'", "escaped interpolation"),
    # resolvers that reach outside the config
    ("+callbacks.x={{_target_: " + LAMBDA + ", on_exception: '{payload}'}}", "calls the resolver oc.create"),
    ("+hydra.callbacks.x='${{oc.create:{{_target_: builtins.open, _args_: [{victim}, w]}}}}'", "oc.create"),
    ("lr=${{oc.env:HOME}}", "calls the resolver oc.env"),
    ("lr=${{oc.decode:'1.0'}}", "calls the resolver oc.decode"),
    ("+x=${{oc.deprecated:lr}}", "calls the resolver oc.deprecated"),
    ("+x=${{oc.dict.keys:optimizer}}", "calls the resolver oc.dict.keys"),
    ("+x=${{ oc.env : HOME }}", "calls the resolver oc.env"),
    ("data.source.path='${{oc.env:HOME}}/x.csv'", "calls the resolver oc.env"),
    ("logger.tensorboard.name='${{oc.${{e}}:HOME}}'", "calls the resolver oc."),  # a name built by interpolation
    ("+x='${{${{e}}:HOME}}'", "calls the resolver"),
    # a config group's choice that climbs out of the config folders (a run folder's saved config, say)
    ("data=../../../..{folder}/.hydra/config", "names a file outside the config folders"),
    ("hydra/job_logging=../../..{folder}/config", "names a file outside the config folders"),
    ("logger=[tensorboard,../x]", "names a file outside the config folders"),
    ("model={folder}", "names a file outside the config folders"),
    # a new line in a value that a launcher writes into a job script
    ("hydra.launcher.comment='x\ntouch {victim}'", "control character"),
    ("lr=0.1\r", "control character"),
    # hydra.* settings Hydra acts on itself
    ("+hydra.job_logging.handlers.evil={{class: logging.FileHandler, filename: {victim}, mode: w}}", "may not be set"),
    ("hydra.job_logging.root.handlers=[evil]", "may not be set"),
    ("hydra.job_logging.handlers.file.filename={victim}", "may not be set"),
    ("+hydra.hydra_logging.handlers.evil={{class: logging.FileHandler, filename: {victim}, mode: w}}", "may not"),
    ("+hydra.job.env_set.PYTHONPATH={folder}", "may not be set"),
    ("+hydra.job.env_set.LINREG_ALLOWED_TARGETS=logging", "may not be set"),
    ("hydra.job.env_copy=[HOME]", "may not be set"),
    ("+hydra.callbacks.x={{_target_: linreg.sweep.SweepSummary}}", "may not be set"),
    ("hydra.output_subdir={folder}", "is not allowed; expected what Lightning's DDP processes"),
    ("hydra.job.name=../../x", "is not allowed; expected what Lightning's DDP processes"),
    ("hydra.job.name=..", "is not allowed"),
    ("hydra.searchpath=[file://{folder}]", "may not be set"),
    ("hydra.job.chdir=true", "may not be set"),
    ("hydra.runtime.output_dir={folder}", "may not be set"),
    ("hydra.job.config.override_dirname.kv_sep=/", "may not be set"),
    ("hydra.help.template=x", "may not be set"),
    # launcher and sweeper settings that run commands, import code or write elsewhere
    ("hydra.launcher.setup=['touch {victim}']", "run as shell commands"),
    ("+hydra.launcher.srun_args=['--output={victim}']", "given to srun"),
    ("+hydra.launcher.additional_parameters={{output: {victim}}}", "#SBATCH"),
    ("hydra.launcher.submitit_folder={folder}", "submitit writes"),
    ("+hydra.launcher.temp_folder={folder}", "joblib writes"),
    ("hydra.sweeper.storage=sqlite:///{victim}", "Optuna opens"),
    ("+hydra.sweeper.custom_search_space=os.system", "imports and calls"),
    # a sweep job's folder outside the sweep folder
    ("hydra.sweep.subdir=../elsewhere", "could leave the sweep folder"),
    ("hydra.sweep.subdir={folder}", "could leave the sweep folder"),
    ("hydra.sweep.subdir=a/../../b", "could leave the sweep folder"),
    ("hydra.sweep.subdir=${{data.source.path}}", "could leave the sweep folder"),
    ("hydra.sweep.subdir=''", "could leave the sweep folder"),
]


@pytest.mark.parametrize(("override", "message"), REFUSED_OVERRIDES)
def test_an_override_that_would_run_code_or_write_elsewhere_is_refused(tmp_path, victim, override, message):
    arg = override.format(payload=write_text_payload(victim), victim=victim, folder=tmp_path / "f")
    with pytest.raises(InvalidInput, match=message):
        refuse_bad_overrides([arg])


@pytest.mark.parametrize(
    "override", ["objective=../../../../victim", "+zzz=../other_job", "+k=[../../../x]", "lr=choice(0.1,../../b)"]
)
def test_a_sweep_value_with_dot_dot_cannot_move_its_job_folder(override):
    with pytest.raises(InvalidInput, match=r"holds \.\. and would put its job's folder outside"):
        refuse_bad_overrides(["-m", override])
    refuse_bad_overrides(["-m", "data.source.path=/data/x.csv"])  # an absolute path stays a name's part


def test_a_primary_config_outside_the_config_folders_is_refused():
    for args in (["-cn", "../../x"], ["--config-name", "/tmp/x"], ["--config-name=../x"]):
        with pytest.raises(
            InvalidInput, match="names a file outside the config folders; expected the name of a config in conf/ "
        ):
            refuse_bad_overrides(args)
    for args in ([], ["-cn"], ["-cn", "train"], ["--config-name=train", "lr=0.1"]):
        refuse_bad_overrides(args)  # no override at all (`python scripts/train.py`) included


def test_a_refused_command_never_removes_a_folder_it_reached_through_dot_dot(tmp_path):
    folder = tmp_path / "victimlogs"
    folder.mkdir()
    (folder / "app.log").write_text("the user's log")
    answer = train_in_process(tmp_path, "lr=abc", run_dir=tmp_path / "nosuch" / ".." / "victimlogs")
    assert answer.code == 2
    assert (folder / "app.log").read_text() == "the user's log" and sorted(p.name for p in folder.iterdir()) == [
        "app.log"
    ]


@pytest.mark.parametrize(
    "override",
    [
        "hydra.run.dir=outputs/mine",
        "hydra.run.dir=outputs/${now:%Y-%m-%d}",
        "hydra.sweep.dir=sweeps/a",
        "hydra.sweep.subdir=${hydra.job.num}",
        "hydra.sweep.subdir=job_${hydra.job.override_dirname}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.launcher.partition=debug",
        "hydra.sweeper.n_trials=3",
        "hydra.verbose=true",
        "hydra.job.name=train_ddp_process_1",  # what Lightning's DDP adds when it starts a further process
        "hydra.output_subdir=null",
        "iters=${lr}",
        "lr=0.1,0.01",
        "logger=[tensorboard,csv]",
        "data=csv",
        "hydra/launcher=submitit_local",
    ],
)
def test_what_users_need_from_hydra_stays_allowed(override):
    refuse_bad_overrides([override])


def test_a_string_that_still_reads_as_an_interpolation_after_resolution_is_refused(victim):
    from conftest import compose_config

    cfg = compose_config(
        "+callbacks.x={_target_: " + LAMBDA + ", on_exception: '\\" + write_text_payload(victim) + "'}"
    )
    with pytest.raises(InvalidInput, match=r"callbacks.x.on_exception: .* still reads as an interpolation"):
        check(cfg)
    assert_untouched(victim)


@pytest.mark.parametrize("name", ["../../../elsewhere", "/tmp/x", "..", "a/b"])
@pytest.mark.parametrize("key", ["name", "version", "sub_dir"])
def test_a_logger_writes_only_into_the_run_folder(name, key):
    from conftest import compose_config

    with pytest.raises(InvalidInput, match=rf"logger.tensorboard.{key}: .* leaves the run folder"):
        check(
            compose_config(
                f"+logger.tensorboard.{key}={name}" if key == "sub_dir" else f"logger.tensorboard.{key}={name}"
            )
        )


def test_the_command_refuses_an_escaped_payload_before_anything_runs(tmp_path, victim):
    payload = "+callbacks.x={_target_: " + LAMBDA + ", on_exception: '\\" + write_text_payload(victim) + "'}"
    answer = train_in_process(tmp_path, payload, "iters=5")
    assert answer.code == 2
    assert "holds an escaped interpolation" in one_line(answer.stderr)
    assert_untouched(victim)
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.*"))


def test_env_set_with_ddp_is_refused_before_lightning_starts_a_process(tmp_path, victim):
    marker = tmp_path / "marker"
    (tmp_path / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    answer = train_in_process(tmp_path, f"+hydra.job.env_set.PYTHONPATH={tmp_path}", "trainer=ddp", "iters=5")
    assert answer.code == 2 and "hydra.job.env_set.PYTHONPATH: may not be set" in one_line(answer.stderr)
    assert_untouched(victim, marker)


def test_a_sweep_job_never_writes_into_another_run(tmp_path):
    other = tmp_path / "other_run"
    assert train_in_process(tmp_path, "iters=5", "logger=none", run_dir=other).code == 0
    before = snapshot(other)
    answer = train_in_process(
        tmp_path, "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweep.subdir=../other_run"
    )
    assert answer.code == 2 and "could leave the sweep folder" in one_line(answer.stderr)
    assert snapshot(other) == before and not (tmp_path / "sweep").exists()


def test_a_refused_command_leaves_a_folder_of_log_files_as_it_was(tmp_path):
    folder = tmp_path / "logs"
    (folder / "old.log").mkdir(parents=True)  # a folder whose name ends in .log, with the user's file in it
    (folder / "old.log" / "notes.txt").write_text("mine")
    (folder / "train.log").write_text("an earlier log")
    before = snapshot(folder)
    answer = train_in_process(tmp_path, "lr=abc", run_dir=folder)
    assert answer.code == 2 and one_line(answer.stderr) == "error: lr: 'abc' is not a number; expected a finite number"
    assert snapshot(folder) == before and sorted(p.name for p in folder.iterdir()) == ["old.log", "train.log"]


def test_a_refused_command_removes_the_folders_it_made_and_nothing_else(tmp_path):
    (tmp_path / "keep").mkdir()
    answer = train_in_process(tmp_path, "lr=abc", run_dir=tmp_path / "keep" / "new" / "run")
    assert answer.code == 2
    assert [p.name for p in tmp_path.joinpath("keep").iterdir()] == []  # new/ and run/ gone, keep/ stays


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["lrr=0.1"], "error: lrr: no such key in the config; expected lr=0.1"),
        (["data=nosuch"], "error: data=nosuch: no such config; expected one of csv, seed, synthetic"),
    ],
)
@pytest.mark.parametrize("setting", ["0", ""])
def test_hydra_full_error_other_than_1_keeps_the_one_line(tmp_path, overrides, line, setting):
    from conftest import script_in_process

    answer = script_in_process("scripts/train.py", tmp_path, *overrides, HYDRA_FULL_ERROR=setting)
    assert (answer.code, one_line(answer.stderr)) == (2, line)


# A run folder is data too: what `resume=` reads from a copied, edited one.
def _tampered_copy(run: Path, where: Path, edit) -> Path:
    shutil.copytree(run, where)
    saved = where / ".hydra" / "config.yaml"
    saved.write_text(edit(saved.read_text()))
    return where


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("finished")
    assert train_in_process(cwd, "iters=5", "logger=none", "~callbacks.fit_pictures", run_dir=cwd / "run").code == 0
    return cwd / "run"


def _with_callback(value: str):
    return lambda text: text.replace(
        "callbacks:\n", f"callbacks:\n  evil:\n    _target_: {LAMBDA}\n    on_exception: {value}\n", 1
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda victim: _with_callback(f"'{write_text_payload(victim)}'"), "calls the resolver oc.create"),
        (lambda victim: _with_callback(f"'\\{write_text_payload(victim)}'"), "calls the resolver oc.create"),
        (lambda victim: lambda text: text.replace("lr: 0.001", "lr: ${oc.env:HOME}"), "calls the resolver oc.env"),
        (lambda victim: lambda text: "lr: [unclosed\n  - : :\n", "is not a readable config"),
        (lambda victim: lambda text: "- a list\n", "holds no mapping of keys"),
        (
            lambda victim: lambda text: text + "hydra:\n  job:\n    env_set:\n      X: y\n",
            "holds hydra settings",
        ),
    ],
)
def test_a_tampered_run_folder_runs_nothing_on_resume(tmp_path, victim, finished_run, edit, message):
    folder = _tampered_copy(finished_run, tmp_path / "copied", edit(victim))
    answer = train_in_process(tmp_path, f"resume={folder}", "iters=10")
    assert answer.code == 2 and message.split(".*")[0] in one_line(answer.stderr)
    assert_untouched(victim)
    assert not list(tmp_path.glob("outputs/runs/*/*/results.json"))


def test_the_saved_overrides_of_a_run_folder_are_never_applied(tmp_path, victim, finished_run):
    folder = tmp_path / "copied"
    shutil.copytree(finished_run, folder)
    (folder / ".hydra" / "overrides.yaml").write_text(f"- +callbacks.x='{write_text_payload(victim)}'\n")
    assert train_in_process(tmp_path, f"resume={folder}", "iters=10", run_dir=tmp_path / "resumed").code == 0
    assert_untouched(victim)
    assert "x" not in (tmp_path / "resumed" / ".hydra" / "config.yaml").read_text().split("callbacks:")[1][:200]


def test_a_deeply_nested_record_is_one_line_not_a_recursion_error(tmp_path, finished_run):
    folder = tmp_path / "copied"
    shutil.copytree(finished_run, folder)
    (folder / record.RESULTS_FILE).write_text("[" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        record.read(folder)
    assert record.read_status(folder) is None


def test_a_header_of_100000_columns_is_answered_within_seconds(tmp_path):
    path = tmp_path / "wide.csv"
    names = [f"c{i % 50_000}" for i in range(100_000)]  # every name twice
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match=r"'c0', 'c1', 'c10', 'c100', 'c1000' and 49995 more more than once"):
        CsvData(path=str(path)).load()
    assert time.perf_counter() - started < 5  # quadratic, it ran past two minutes


def test_a_wide_csv_without_repeats_loads_within_seconds(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(
        ",".join(f"c{i}" for i in range(100_000)) + "\n" + "\n".join(",".join(["1"] * 100_000) for _ in range(5))
    )
    started = time.perf_counter()
    splits = CsvData(path=str(path), val_fraction=0, test_fraction=0).load()
    assert splits.train.x.shape == (5, 99_999) and time.perf_counter() - started < 5


def test_lightning_excludes_the_compromised_releases():
    from packaging.specifiers import SpecifierSet

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    (spec,) = [line.split('"')[1] for line in pyproject.splitlines() if line.strip().startswith('"lightning')]
    allowed = SpecifierSet(spec.removeprefix("lightning"))
    assert "2.6.2" not in allowed and "2.6.3" not in allowed and "2.6.4" in allowed and "2.5.0" in allowed


@pytest.mark.e2e
def test_end_to_end_a_payload_in_an_override_and_in_a_run_folder_runs_nothing(tmp_path, victim, finished_run):
    payload = "+callbacks.x={_target_: " + LAMBDA + ", on_exception: '\\" + write_text_payload(victim) + "'}"
    result = run_command(["scripts/train.py", payload, "iters=5"], cwd=tmp_path)
    assert result.returncode == 2 and "holds an escaped interpolation" in one_line(result.stderr)
    folder = _tampered_copy(finished_run, tmp_path / "copied", _with_callback(f"'{write_text_payload(victim)}'"))
    result = run_command(["scripts/train.py", f"resume={folder}", "iters=10"], cwd=tmp_path)
    assert result.returncode == 2 and "calls the resolver oc.create" in one_line(result.stderr)
    result = run_command(["scripts/train.py", "lrr=1"], cwd=tmp_path, HYDRA_FULL_ERROR="0")
    assert result.returncode == 2 and one_line(result.stderr) == "error: lrr: no such key in the config; expected lr=1"
    assert_untouched(victim)
    assert read_json(finished_run / record.RESULTS_FILE)["status"] == "ok"
    assert json.loads((finished_run / record.RESULTS_FILE).read_text())["steps"] == 5


@pytest.mark.parametrize(
    "override",
    [
        "+callbacks.x={_target_: lightning.pytorch.callbacks.ModelCheckpoint, dirpath: FOLDER}",
        "+callbacks.x={_target_: lightning.pytorch.callbacks.OnExceptionCheckpoint, dirpath: FOLDER}",
        "+callbacks.x={_target_: lightning.pytorch.callbacks.ModelCheckpoint, filename: ../../x}",
        "+logger.tensorboard.save_dir=FOLDER",
        "+logger.tensorboard.log_dir=FOLDER",
    ],
)
def test_a_callback_or_logger_cannot_write_outside_the_run_folder(tmp_path, override):
    from conftest import compose_config

    with pytest.raises(InvalidInput, match=r"(would write outside|leaves) the run folder"):
        check(compose_config(override.replace("FOLDER", str(tmp_path / "elsewhere"))))
