"""The floor of target 1: the notebook's last cell as the smallest Lightning script that trains it.

No Hydra, no logger, no callbacks, no validation, no checkpoint: a LightningModule with `nn.Linear`,
`nn.MSELoss` and SGD, the four points served as `iters` full batches in one epoch (as the project serves
them), and the project's start-up treatment (no garbage collection while importing, the imports frozen).
What it costs beyond `plain_notebook.py` is what importing Lightning (which imports torchmetrics, and
torchmetrics whatever of matplotlib and scipy is installed) and Lightning's loop cost any Lightning project;
a ratio below it is out of reach without leaving Lightning.
`python benchmarks/lightning_notebook.py [iters]` prints f(5).
"""

import gc
import sys

gc.disable()

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

gc.freeze()
gc.enable()


class NotebookCell(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.linear, self.loss = nn.Linear(1, 1), nn.MSELoss()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.loss(self.linear(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.001)


iters = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
torch.manual_seed(42)
x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
y = torch.tensor([[2.0], [4.0], [6.0], [8.0]])
model = NotebookCell()
trainer = L.Trainer(
    accelerator="cpu", max_steps=iters, logger=False, enable_checkpointing=False, enable_progress_bar=False,
    enable_model_summary=False,
)  # fmt: skip
trainer.fit(model, train_dataloaders=DataLoader([(x, y)] * iters, batch_size=None))  # the full batch, iters times
print(f"Prediction after training : f(5) = {model.linear(torch.tensor([5.0])).item():.3f}")
