"""The baseline: the notebook's last cell (nn.Linear + nn.MSELoss + SGD) as a plain script, no framework.

`python benchmarks/plain_notebook.py [iters]` trains on the notebook's four points and prints f(5).
"""

import sys

import torch
from torch import nn

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
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
