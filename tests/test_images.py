"Images as people have them: files read upright and in 8 bits, one-line errors, drawings written by extension."
import numpy as np
import pytest
from PIL import Image

from paligemma.tasks.detection import draw_detections
from paligemma.processor import Processor, to_rgb_uint8
from paligemma.tokenizer import Tokenizer


def _exif(tag):
    exif = Image.Exif(); exif[0x0112] = tag  # Orientation
    return exif


def test_phone_photo_is_read_upright(tmp_path):
    "A 40x64 picture stored a quarter turn back with EXIF orientation 6 reads as the 64x40 upright picture."
    yy, xx = np.mgrid[:64, :40]
    upright = np.stack([4 * yy, 6 * xx, 255 - 4 * yy], -1).astype(np.uint8)
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(tmp_path / "p.jpg", exif=_exif(6), quality=95)
    got = to_rgb_uint8(tmp_path / "p.jpg")
    assert got.shape == upright.shape
    assert np.abs(got.astype(int) - upright).mean() < 1.5


def test_16_bit_and_float_grayscale(tmp_path):
    Image.fromarray(np.array([[0, 257, 32896, 65535]], np.uint16)).save(tmp_path / "g.png")
    assert to_rgb_uint8(tmp_path / "g.png")[0, :, 1].tolist() == [0, 1, 128, 255]
    Image.fromarray(np.array([[0, 0.5, 1]], np.float32)).save(tmp_path / "f.tif")
    assert to_rgb_uint8(tmp_path / "f.tif")[0, :, 2].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[10, 20, 30]], np.float32)).save(tmp_path / "w.tif")  # outside [0, 1]: min-max
    assert to_rgb_uint8(tmp_path / "w.tif")[0, :, 0].tolist() == [0, 128, 255]


def test_alpha_on_white_and_first_frame(tmp_path):
    Image.fromarray(np.array([[(0, 0, 0, 0), (0, 0, 0, 255), (0, 255, 0, 51)]], np.uint8)).save(tmp_path / "a.png")
    assert to_rgb_uint8(tmp_path / "a.png").tolist() == [[[255, 255, 255], [0, 0, 0], [204, 255, 204]]]
    frames = [Image.new("RGB", (3, 2), c) for c in ("blue", "red")]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert (to_rgb_uint8(tmp_path / "a.gif") == (0, 0, 255)).all()


def test_processor_takes_a_16_bit_image(spm_model):
    proc = Processor(Tokenizer(spm_model), 7)
    out = proc.image(Image.fromarray(np.full((9, 11), 65535, np.uint16)))
    assert out.shape == (7, 7, 3) and np.all(out == 1.0)  # white, not clipped noise


@pytest.mark.parametrize("content,reason", [(b"not an image", "not an image file Pillow can open"),
                                            (None, "truncated or damaged")])
def test_unreadable_file_gets_one_line(tmp_path, content, reason):
    path = tmp_path / "photo.jpg"
    if content is None:
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(path)
        content = path.read_bytes()[:500]
    path.write_bytes(content)
    with pytest.raises(ValueError) as e: to_rgb_uint8(path)
    msg = str(e.value)
    assert msg.startswith(f"cannot read image {str(path)!r}: {reason}") and "\n" not in msg


@pytest.mark.parametrize("name,fmt", [("d.jpg", "JPEG"), ("d.png", "PNG"), ("d", "PNG")])
def test_drawing_format_follows_extension(tmp_path, name, fmt):
    draw_detections(np.zeros((30, 40, 3), np.uint8), [dict(label="x", box=(2, 3, 20, 30))], path=tmp_path / name)
    with Image.open(tmp_path / name) as im: assert im.format == fmt


def test_drawing_refuses_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="cannot write a '.bmp' file"):
        draw_detections(np.zeros((30, 40, 3), np.uint8), [], path=tmp_path / "d.bmp")
    assert not (tmp_path / "d.bmp").exists()
