"""Remake the README's pictures: `python scripts/screenshots.py` (about two minutes).

Runs the README's sweep in a temporary folder, starts a real TensorBoard on it and captures its Time Series,
HPARAMS and IMAGES tabs with headless Chromium (installed with apt-get where missing), then copies the sweep's
summary.png beside them. Writes docs/tensorboard_time_series.png, docs/tensorboard_hparams.png,
docs/tensorboard_images.png and docs/sweep_summary.png (or into --out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README_SWEEP = ["lr=0.001,0.01,0.1,1.0", "iters=100,1000"]
TABS = {"time_series": "timeseries", "hparams": "hparams", "images": "images"}  # file name: TensorBoard's tab
WINDOW = "1600,1000"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder for the PNG files")
    parser.add_argument("sweep", nargs="*", default=README_SWEEP, help="the sweep's overrides (the README's)")
    args = parser.parse_args()
    chromium = _chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        sweep_dir = _run_sweep(Path(tmp), args.sweep)
        url = _tensorboard(sweep_dir)
        for name, tab in TABS.items():
            _capture(chromium, f"{url}?forceSVG=true#{tab}", args.out / f"tensorboard_{name}.png", Path(tmp))
        shutil.copyfile(sweep_dir / "summary.png", args.out / "sweep_summary.png")
    print(f"wrote {', '.join(f'tensorboard_{name}.png' for name in TABS)} and sweep_summary.png in {args.out}")
    return 0


def _chromium() -> str:
    """Chromium's command; installed with the system's package manager (Debian's apt-get) where missing."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return name
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=True)
    return "chromium"


def _run_sweep(cwd: Path, overrides: list[str]) -> Path:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py"), "-m", *overrides], cwd=cwd, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (sweep_dir,) = (cwd / "outputs" / "multirun").glob("*/*")
    return sweep_dir


def _tensorboard(logdir: Path, timeout: float = 60) -> str:
    """A real TensorBoard on `logdir`, served from this process on a port the system picks (TensorBoard's own
    `launch()`); returns its URL once it lists the runs."""
    from tensorboard import program

    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"])
    url = board.launch()
    deadline = time.monotonic() + timeout
    while not json.loads(urllib.request.urlopen(f"{url}data/runs", timeout=5).read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"TensorBoard at {url} found no runs in {logdir} within {timeout:.0f} s")
        time.sleep(0.5)
    return url


def _capture(chromium: str, url: str, path: Path, profile: Path) -> None:
    """One screenshot of the page once its scripts have run (virtual time lets them finish first).

    `?forceSVG=true` in the URL: headless Chromium has no WebGL here, and TensorBoard draws its charts with it.
    """
    subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile / 'chromium'}",
            f"--screenshot={path}", f"--window-size={WINDOW}", "--virtual-time-budget=15000", "--hide-scrollbars",
            url,
        ],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
