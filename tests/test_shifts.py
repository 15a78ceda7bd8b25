"""The test set under distribution shift and BN's statistics re-estimated on it
(bnlab.training.shifts): each shift does what its docstring says in pixel units; AdaBN undoes a
brightness shift exactly where BN follows the first linear map; a run records every shift and
mode and trains as it would without them; bad settings are one line."""

import pandas as pd
import pytest
import torch
from conftest import make_config

from bnlab.errors import ConfigError
from bnlab.layers.models import build_model
from bnlab.training.data import load_data
from bnlab.training.shifts import batches_of, served, shifted
from bnlab.training.train import run_job

SYNTHETIC = ("dataset=synthetic", "dataset.synthetic_train=600", "dataset.val_size=100")


def _data(*overrides):
    return load_data(make_config(*SYNTHETIC, *overrides))


@pytest.mark.parametrize("model", ["model=mlp", "model=cnn"])
def test_each_shift_acts_on_the_pixels_as_stated(model):
    data = _data(model)
    pixels = data.to_pixels(data.x_test)
    assert pixels.shape[1:] == data.image_shape
    torch.testing.assert_close(data.from_pixels(pixels), data.x_test)  # the round trip
    bright = data.to_pixels(shifted(data, "brightness", 0.5, seed=0))
    torch.testing.assert_close(bright, pixels + 0.2)
    flat = data.to_pixels(shifted(data, "contrast", 1.0, seed=0))
    mean = pixels.mean((1, 2, 3), keepdim=True)
    torch.testing.assert_close(flat, mean + 0.2 * (pixels - mean))
    moved = data.to_pixels(shifted(data, "translate", 0.5, seed=0))  # 2 pixels
    torch.testing.assert_close(moved[:, :, 2:, 2:], pixels[:, :, :-2, :-2])
    assert float(moved[:, :, :2].abs().max()) == 0.0
    noisy = [data.to_pixels(shifted(data, "noise", 1.0, seed=s)) for s in (0, 0, 1)]
    assert torch.equal(noisy[0], noisy[1]) and not torch.equal(noisy[0], noisy[2])
    assert 0.38 < float((noisy[0] - pixels).std()) < 0.42  # 0.4 * z


def test_adabn_undoes_a_brightness_shift_where_bn_follows_the_first_linear_map():
    """x -> x + c moves W x by W c, the same for every example: statistics re-estimated on the
    shifted images normalize it away, so the logits equal those of statistics re-estimated on
    the clean images, on the clean images (float64: to rounding)."""
    cfg = make_config(*SYNTHETIC, "norm=bn", "trainer.replicas=2")
    data = _data("norm=bn")
    model = build_model(cfg, data.input_shape, 10, [0, 1]).double()
    clean = data.x_test.double()
    bright = clean + 0.4 * data.pixel_scale  # brightness at strength 1, in float64
    adapted = served(model, batches_of(bright, len(bright), 60))
    reference = served(model, batches_of(clean, len(clean), 60))
    with torch.no_grad():
        torch.testing.assert_close(adapted(bright), reference(clean), rtol=1e-9, atol=1e-9)
        assert not torch.allclose(model.eval()(bright), model(clean), atol=1e-3)  # not by chance


def test_a_run_records_every_shift_and_mode_and_trains_as_without(tmp_path):
    common = [
        *SYNTHETIC,
        "model=cnn",
        "model.channels=[4,8]",
        "trainer.steps=30",
        "trainer.eval_every=30",
        "trainer.replicas=2",
    ]
    shifts = ["trainer.shifts=[contrast,noise]", "trainer.adapt_examples=[16,200]"]
    for norm in ("bn", "none"):
        run_job(make_config(*common, f"norm={norm}"), tmp_path / norm / "off")
        run_job(make_config(*common, f"norm={norm}", *shifts), tmp_path / norm / "on")
        for seed in (0, 1):
            off = pd.read_csv(tmp_path / norm / "off" / f"seed={seed}" / "metrics.csv")
            on = pd.read_csv(tmp_path / norm / "on" / f"seed={seed}" / "metrics.csv")
            pd.testing.assert_frame_equal(off, on[on.split != "shift"].reset_index(drop=True))
            modes = ["train", "population", "adapt16", "adapt200"] if norm == "bn" else ["train"]
            expected = {
                f"{k}_{s:g}_{m}"
                for k in ("contrast", "noise")
                for s in (0.25, 0.5, 1.0)
                for m in modes
            }
            recorded = on[on.split == "shift"]
            assert set(recorded.metric) == expected and recorded.value.between(0, 1).all()


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.shifts=[blur]", "trainer.shifts"),
        ("trainer.shift_strengths=[0,1]", "trainer.shift_strengths"),
        ("trainer.adapt_examples=[1]", "trainer.adapt_examples"),
    ],
)
def test_a_bad_shift_setting_is_one_line(override, key):
    with pytest.raises(ConfigError, match=key):
        make_config(override)
