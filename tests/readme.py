"""The commands the README and docs/ show, and running them in the README's order as a user would."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO, run_command

README_TEXT = (REPO / "README.md").read_text() + (REPO / "docs" / "tutorial.md").read_text()
README_COMMANDS = [
    line.split("  #")[0].strip()
    for block in re.findall(r"```bash\n(.*?)```", README_TEXT, re.S)
    for line in block.splitlines()
    if line.strip()
]
# What a test does not run as the README shows it, and why: the Optuna search is cut from 20 trials to 3.
SHORTER = {"python scripts/train.py -m hparams_search=optuna": ["hydra.sweeper.n_trials=3"]}


def latest_output(cwd: Path, kind: str) -> str:
    """The newest `outputs/<kind>/<date>/<time>` folder under `cwd`, relative to it."""
    return str(max((cwd / "outputs" / kind).glob("*/*")).relative_to(cwd))


@dataclass
class ReadmeRun:
    """What one README command did: its process, and the newest run or sweep folder after it."""

    result: subprocess.CompletedProcess
    folder: Path | None


def run_readme_commands(commands: list[str], cwd: Path, kind: str) -> dict[str, ReadmeRun]:
    """The commands in the README's order, in `cwd`; `<date>/<time>` stands for the newest run or sweep."""
    done = {}
    for command in commands:
        line = command
        for placeholder_kind in ("runs", "multirun"):
            placeholder = f"outputs/{placeholder_kind}/<date>/<time>"
            if placeholder in line:
                line = line.replace(placeholder, latest_output(cwd, placeholder_kind))
        result = run_command(shlex.split(line)[1:] + SHORTER.get(command, []), cwd=cwd)
        folders = list((cwd / "outputs" / kind).glob("*/*"))
        done[command] = ReadmeRun(result, max(folders) if folders else None)
    return done
