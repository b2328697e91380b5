"""Bad input that needs no torch is answered before torch's import: each real command, run under
`python -X importtime` (which lists every module as it is imported), exits with its one line and status 2
having imported no module of torch or Lightning. A check that moved behind those imports fails here."""

import json

import pytest
from conftest import run_command

HEAVY = ("torch", "lightning")
TRAIN, PREDICT = "scripts/train.py", "scripts/predict.py"
CASES = [
    # (command, what its one line says)
    ([TRAIN, "lr=abc"], "error: lr: 'abc' is not a number; expected a finite number"),
    ([TRAIN, "data=csv", "data.source.path={folder}/nope.csv"], "error: data.source.path: no such file"),
    ([TRAIN, "data=csv", "data.source.path={bad_cell}"], "line 3, column 'y': 'four' is not a number"),
    ([TRAIN, "data=csv", "data.source.path={bad_header}"], "has no name for column 2 of its header row"),
    ([TRAIN, "data=csv", "data.source.path={one_row}"], "1 rows are too few to split into train"),
    ([TRAIN, "data=csv", "data.source.path={ok}", "data.source.target=price"], "data.source.target: no column"),
    ([TRAIN, "data=synthetic", "data.source.n_samples=2"], "error: data.source.n_samples: 2 is not allowed"),
    ([TRAIN, "data.batch_size=-4"], "error: data.batch_size: -4 is not allowed"),
    ([TRAIN, "data.standardize=maybe"], "error: data.standardize: 'maybe' is not allowed; expected true, false"),
    ([TRAIN, "resume={folder}/nosuch"], "error: resume: '{folder}/nosuch' is not a run folder"),
    ([TRAIN, "resume={diverged}"], "error: resume: the run in {diverged} diverged"),
    ([PREDICT, "{folder}/nosuch", "abc"], "error: x: 'abc' is not a number"),
    ([PREDICT, "{folder}/nosuch", "1e39"], "error: x: '1e39' is beyond float32's range"),
    ([PREDICT, "{folder}/nosuch.ckpt", "5"], "error: checkpoint: no such file '{folder}/nosuch.ckpt'"),
    ([PREDICT, "{diverged}", "5"], "error: checkpoint: the run in '{diverged}' diverged"),
]


def make_inputs(folder):
    """The files the cases name. The diverged run is a folder as a run leaves it: its checkpoint (never opened:
    the record refuses first), its config and its record."""
    files = {"folder": folder, **{name: folder / f"{name}.csv" for name in ("bad_cell", "bad_header", "one_row", "ok")}}
    files["bad_cell"].write_text("x,y\n1,2\n2,four\n3,6\n")
    files["bad_header"].write_text("x,\n1,2\n2,3\n3,4\n")
    files["one_row"].write_text("x,y\n1,2\n")
    files["ok"].write_text("x,y\n1,2\n2,4\n3,6\n4,8\n5,10\n")
    files["diverged"] = folder / "diverged"
    (files["diverged"] / "checkpoints").mkdir(parents=True)
    (files["diverged"] / "checkpoints" / "last.ckpt").write_bytes(b"never read")
    (files["diverged"] / ".hydra").mkdir()
    (files["diverged"] / ".hydra" / "config.yaml").write_text("lr: 10\n")
    (files["diverged"] / "results.json").write_text(json.dumps({"status": "diverged", "stop_reason": "inf at 3"}))
    return files


def imported_modules(stderr: str) -> list[str]:
    """The modules `-X importtime` reports, in import order ("import time: self | cumulative | name")."""
    return [line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")][1:]


@pytest.mark.e2e
@pytest.mark.parametrize(("command", "message"), CASES, ids=[" ".join(c[0][1:]) for c in CASES])
def test_bad_input_is_answered_before_torch_is_imported(tmp_path, command, message):
    files = make_inputs(tmp_path)
    command = [part.format(**files) for part in command]

    result = run_command(["-X", "importtime", *command], cwd=tmp_path)

    said = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(said) == 1 and message.format(**files) in said[0], said
    heavy = [name for name in imported_modules(result.stderr) if name.split(".")[0] in HEAVY]
    assert heavy == [], f"imported before answering: {heavy[:5]}"


def test_the_import_log_is_read_as_python_writes_it():
    """`imported_modules` reads the real format (its header line first), so an empty list means no import."""
    log = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   _io\n"
        "import time:      3000 |     900000 | torch\n"
        "error: x\n"
    )
    assert imported_modules(log) == ["_io", "torch"]
