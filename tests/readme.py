"""The commands the README and docs/ show, and running them in the pages' order as a user would.

The pages are README.md, then the docs/ pages in the order the README's Documentation table lists them, then
any other docs/*.md (sorted). A command is a line of a ```bash block; the output shown for it is the first
```text block after that bash block, or a sentence beside it, and the tests compare both with a real run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO, run_command

DOCS = REPO / "docs"


def readme_pages() -> list[Path]:
    """README.md, then the docs pages in the order of the README's Documentation table, then any others."""
    readme = REPO / "README.md"
    table = readme.read_text().split("\n## Documentation", 1)[-1]
    listed = [DOCS / name for name in dict.fromkeys(re.findall(r"\]\(docs/([\w.-]+\.md)\)", table))]
    others = sorted(set(DOCS.glob("*.md")) - set(listed))
    return [readme, *(page for page in listed if page.is_file()), *others]


README_PAGES = {str(page.relative_to(REPO)): page.read_text() for page in readme_pages()}
README_TEXT = "\n".join(README_PAGES.values())
BASH_BLOCKS = [
    [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    for block in re.findall(r"```bash\n(.*?)```", README_TEXT, re.S)
]
README_COMMANDS = [command for block in BASH_BLOCKS for command in block]
# What a test does not run as the README shows it, and why: the Optuna search is cut from 20 trials to 3.
SHORTER = {"python scripts/train.py -m hparams_search=optuna": ["hydra.sweeper.n_trials=3"]}


def bash_block_of(command: str) -> list[str]:
    """The commands of the first bash block that shows `command`."""
    return next(block for block in BASH_BLOCKS if command in block)


def shown_output(command: str) -> list[str]:
    """The lines of the first ```text block after the bash block that shows `command` (before any other block)."""
    for match in re.finditer(r"```bash\n(.*?)```", README_TEXT, re.S):
        lines = [line.split("  #")[0].strip() for line in match.group(1).splitlines()]
        if command in lines:
            rest = README_TEXT[match.end() :]
            following = re.search(r"```(\w*)\n(.*?)```", rest, re.S)
            assert following and following.group(1) == "text", f"no ```text block follows {command!r}"
            return following.group(2).splitlines()
    raise AssertionError(f"no bash block shows {command!r}")


def section(page: str, heading: str) -> str:
    """The text of a page's `## heading` section, up to the next heading of that level or above."""
    text = README_PAGES[page].split(f"\n## {heading}\n", 1)[1]
    return re.split(r"\n#{1,2} ", text, maxsplit=1)[0]


def latest_output(cwd: Path, kind: str) -> str:
    """The newest `outputs/<kind>/<date>/<time>` folder under `cwd`, relative to it."""
    return str(max((cwd / "outputs" / kind).glob("*/*")).relative_to(cwd))


@dataclass
class ReadmeRun:
    """What one README command did: its process, and the newest run or sweep folder after it (or None when the
    command made no new one)."""

    result: subprocess.CompletedProcess
    folder: Path | None
    new_folder: bool = False


def run_readme_commands(commands: list[str], cwd: Path, kind: str) -> dict[str, ReadmeRun]:
    """The commands in the pages' order, in `cwd`; `<date>/<time>` stands for the newest run or sweep."""
    done = {}
    for command in commands:
        line = command
        for placeholder_kind in ("runs", "multirun"):
            placeholder = f"outputs/{placeholder_kind}/<date>/<time>"
            if placeholder in line:
                line = line.replace(placeholder, latest_output(cwd, placeholder_kind))
        before = set((cwd / "outputs" / kind).glob("*/*"))
        result = run_command(shlex.split(line)[1:] + SHORTER.get(command, []), cwd=cwd)
        folders = set((cwd / "outputs" / kind).glob("*/*"))
        done[command] = ReadmeRun(result, max(folders) if folders else None, bool(folders - before))
    return done
