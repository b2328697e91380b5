"""Remake the README's pictures: `python scripts/screenshots.py` (about two minutes).

Runs the README's sweep in a temporary folder, starts a real TensorBoard on it and captures its Time Series,
HPARAMS and IMAGES tabs with headless Chromium (installed with apt-get where missing), then copies the sweep's
summary.png beside them. Writes docs/tensorboard_time_series.png, docs/tensorboard_hparams.png,
docs/tensorboard_images.png and docs/sweep_summary.png (or into --out).
"""

from __future__ import annotations

import argparse
import shutil
import socket
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
        port = _free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("tensorboard")), "--logdir", str(sweep_dir), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_serving(port)
            for name, tab in TABS.items():
                url = f"http://127.0.0.1:{port}/?forceSVG=true#{tab}"
                _capture(chromium, url, args.out / f"tensorboard_{name}.png", Path(tmp))
        finally:
            server.terminate()
            server.wait(timeout=30)
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


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
