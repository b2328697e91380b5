"""Train the regression: `python scripts/train.py lr=0.01 iters=500`, or a sweep with `-m`."""

import gc
from pathlib import Path

# The imports (Hydra here, Lightning and torch in linreg.cli.main) build about a million objects that live as
# long as the process; collecting while they are built walks them again and again (about 1 s). linreg.cli
# freezes them once they are in and turns collection back on.
gc.disable()

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from linreg.cli import main, run_app  # noqa: E402


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def train(cfg: DictConfig) -> float:
    return main(cfg)


if __name__ == "__main__":
    run_app(train, config_dir=Path(__file__).resolve().parent.parent / "conf")
