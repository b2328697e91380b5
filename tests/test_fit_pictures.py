"""The fit pictures: each is the static part rendered once with the model's artists drawn over it, and must
be exactly the picture a whole render of the same figure gives, for any state of the model."""

import pytest
import torch

from linreg.fit_pictures import FitPicture
from linreg.least_squares import optimum
from linreg.models import LinearRegression
from linreg.sources import SyntheticData


def _splits(n_features: int):
    return SyntheticData(n_samples=200, n_features=n_features, noise=0.1).load()


@pytest.mark.parametrize("n_features", [1, 3])  # the line through the data; predicted against true
def test_a_blitted_picture_equals_a_whole_render(n_features):
    splits = _splits(n_features)
    best = optimum(splits.train.x, splits.train.y)
    blitted, whole = FitPicture(splits, best), FitPicture(splits, best, blit=False)
    model = LinearRegression(in_features=n_features, out_features=1)
    pictures = []
    for step, weight in [(0, 0.0), (100, 1.0), (1000, 2.0), (1001, 1e30), (1002, float("nan"))]:
        with torch.no_grad():
            model.network.weight.fill_(weight)
        pictures.append(blitted.render(model, step).copy())
        assert (pictures[-1] == whole.render(model, step)).all(), f"step {step}, weight {weight}"
    assert (pictures[0] != pictures[1]).any()  # the model's artists are drawn: another weight, another picture
