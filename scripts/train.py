"""Train the regression: `python scripts/train.py lr=0.01 iters=500`, or a sweep with `-m`."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from linreg.cli import main, run_app


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def train(cfg: DictConfig) -> float:
    return main(cfg)


if __name__ == "__main__":
    run_app(train, config_dir=Path(__file__).resolve().parent.parent / "conf")
