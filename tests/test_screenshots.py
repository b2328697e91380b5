"""`python scripts/screenshots.py`, the README's pictures, on a shorter sweep: a real TensorBoard captured by
headless Chromium, and the sweep's plot."""

import pytest
from conftest import run_command
from matplotlib.image import imread

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_screenshots_capture_tensorboards_tabs_and_the_sweep_plot(tmp_path):
    out = tmp_path / "docs"
    result = run_command(["scripts/screenshots.py", "--out", str(out), "lr=0.01,1.0", "iters=20"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = ["tensorboard_time_series", "tensorboard_hparams", "tensorboard_images"]
    for name in names:
        pixels = imread(out / f"{name}.png")
        assert pixels.shape[:2] == (1000, 1600), name
        header = pixels[:40, :, :3].reshape(-1, 3)  # TensorBoard's orange bar: the page was served and drawn
        assert ((header[:, 0] > 0.9) & (header[:, 1] > 0.4) & (header[:, 1] < 0.6) & (header[:, 2] < 0.1)).mean() > 0.5
        body = pixels[100:, 300:, :3].reshape(-1, 3)
        assert len({tuple(p) for p in (body * 16).astype(int)}) > 20, name  # charts, tables, pictures: not blank
    assert imread(out / "sweep_summary.png").shape[:2] == (480, 1200)
