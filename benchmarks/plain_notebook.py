"""The baseline: the notebook's last cell (nn.Linear + nn.MSELoss + SGD) as a plain script, no framework.

`python benchmarks/plain_notebook.py [iters] [--frozen-imports]` trains on the notebook's four points and
prints f(5). `--frozen-imports` gives it the project's start-up treatment (scripts/train.py): no garbage
collection while importing, the imports' objects frozen after, so that a ratio can leave that saving out.
"""

import gc
import sys

FROZEN_IMPORTS = "--frozen-imports" in sys.argv
if FROZEN_IMPORTS:
    gc.disable()

import torch  # noqa: E402
from torch import nn  # noqa: E402

if FROZEN_IMPORTS:
    gc.freeze()
    gc.enable()

numbers = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
iters = int(numbers[0]) if numbers else 1000
torch.manual_seed(42)
x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
y = torch.tensor([[2.0], [4.0], [6.0], [8.0]])
model = nn.Linear(1, 1)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
for epoch in range(iters):
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    if epoch % 100 == 0:
        print(f"epoch {epoch + 1}: w= {model.weight.item():.3f}, loss ={loss:.8f}")
print(f"Prediction after training : f(5) = {model(torch.tensor([5.0])).item():.3f}")
