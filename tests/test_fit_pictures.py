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


def _red_pixels(pixels) -> int:
    return int(((pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)).sum())


def test_a_diverged_runs_picture_says_so_in_a_red_title():
    """The data and the least-squares line alone would look like a perfect fit: the title says `diverged`, in
    red, whether the loss monitor saw it (the step given) or the model itself predicts NaN."""
    splits = _splits(1)
    picture = FitPicture(splits, optimum(splits.train.x, splits.train.y))
    model = LinearRegression(in_features=1, out_features=1)
    with torch.no_grad():
        model.network.weight.fill_(2.0)
    assert _red_pixels(picture.render(model, 100)) == 0  # a fit that is under way: a black title
    assert _red_pixels(picture.render(model, 17, diverged_at=17)) > 200
    with torch.no_grad():
        model.network.weight.fill_(float("nan"))
    assert _red_pixels(picture.render(model, 18)) > 200


def test_a_diverged_model_is_not_drawn_as_if_it_were_a_fit():
    """Its predictions are far off: drawn, a near-vertical line through the data read as a fit. Two diverged
    models whose lines cross the data at x = 0 and x = -1 give the same picture below the title (which differs
    only in their mse)."""
    splits = _splits(1)
    picture = FitPicture(splits, optimum(splits.train.x, splits.train.y))
    model = LinearRegression(in_features=1, out_features=1)
    drawn = []
    for bias in (0.0, 1e6):
        with torch.no_grad():
            model.network.weight.fill_(1e6)
            model.network.bias.fill_(bias)
        drawn.append(picture.render(model, 17, diverged_at=17)[40:].copy())
    assert (drawn[0] == drawn[1]).all()
    with torch.no_grad():
        model.network.weight.fill_(-1.0)
        model.network.bias.fill_(0.0)
    assert (picture.render(model, 18)[40:] != drawn[0]).any()  # a model that has not diverged is drawn


def test_a_pictures_png_holds_its_pixels_exactly():
    """Read back by Pillow, an independent PNG reader, and by TensorBoard's own image check (the PNG header)."""
    import io

    import numpy as np
    from PIL import Image

    from linreg.fit_pictures import encode_png

    splits = _splits(1)
    pixels = FitPicture(splits, optimum(splits.train.x, splits.train.y)).render(
        LinearRegression(in_features=1, out_features=1), 100
    )
    png = encode_png(pixels)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert np.array_equal(np.asarray(image), pixels)
    noisy = np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)  # any content, odd sizes
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(noisy)))), noisy)
