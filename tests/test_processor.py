"The processor's resizing against PyTorch (bilinear, as big_vision's tf.image.resize) and transformers (bicubic)."
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SiglipImageProcessorPil

from paligemma.processor import resize_image

# odd sizes, shrinking and enlarging, non-square
SIZES = [((37, 53, 3), 29), ((13, 11, 3), 29), ((100, 61, 3), 56)]


def torch_bilinear(pixels, size):
    "Half-pixel centres, edges clamped, no antialiasing: TensorFlow 2's tf.image.resize, which big_vision uses."
    x = torch.from_numpy(pixels.astype(np.float32)).permute(2, 0, 1)[None]
    y = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return y[0].permute(1, 2, 0).numpy() / 127.5 - 1


def siglip(pixels, size):
    "transformers' PaliGemma image preprocessing: PIL bicubic, rescale by 1/255, normalise with mean 0.5, std 0.5."
    p = SiglipImageProcessorPil(size={"height": size, "width": size}, resample=3, do_normalize=True,
                                image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return p(images=[Image.fromarray(pixels)], return_tensors="np")["pixel_values"][0].transpose(1, 2, 0)


@pytest.mark.parametrize("shape,size", SIZES)
def test_bilinear_matches_torch(shape, size):
    px = np.random.default_rng(size + shape[0]).integers(0, 256, shape, dtype=np.uint8)
    ours = resize_image(px, size)
    assert ours.shape == (size, size, 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, torch_bilinear(px, size), rtol=0, atol=1e-5)


def test_bilinear_large_shrink_matches_torch():
    "A phone-sized image to the model's size: the numpy taps index the right rows and columns far from the origin."
    px = np.random.default_rng(1).integers(0, 256, (1201, 1603, 3), dtype=np.uint8)
    np.testing.assert_allclose(resize_image(px, 224), torch_bilinear(px, 224), rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape,size", SIZES)
def test_bicubic_matches_transformers(shape, size):
    px = np.random.default_rng(size + shape[0]).integers(0, 256, shape, dtype=np.uint8)
    ours, theirs = resize_image(px, size, "bicubic"), siglip(px, size)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-2)
    assert np.abs(ours - theirs).max() < 1e-5  # in fact equal up to float rounding
