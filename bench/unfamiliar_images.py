"""Calibrate and check the shipped tiny model's notice for images unlike its training scenes
(`paligemma.demo.tiny_model.caption_confidence`, `CONFIDENCE_THRESHOLD`, `image_notice`).

The score is the mean log-probability per token of the model's greedy `caption en` answer. The threshold is the 1st
percentile of the score on 2,000 fresh shapes scenes (a calibration seed used nowhere else); its false-alarm rate is
then measured on 2,000 other fresh scenes (a second seed), and its hit rate on photographs: matplotlib's
`grace_hopper.jpg`, and where scikit-image is installed (`pip install scikit-image`, not a dependency of the package)
the photographs it ships and its 200 faces of Labeled Faces in the Wild (25 x 25 px). Fresh scenes saved as JPEG
(quality 75) are reported too: a scene the model still reads, in a format it never saw. Prints a Markdown table and
writes it into its own section of bench/RESULTS.md.

    python bench/unfamiliar_images.py [--n 2000] [--no-write]
"""
from __future__ import annotations
import argparse
import io
import re
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Images unlike the tiny model's training scenes (`bench/unfamiliar_images.py`)"
CALIBRATION_SEED, CHECK_SEED = 2_000_003, 3_000_017  # training used seeds 0-3, the lesson's evaluation 1_000_003
SKIMAGE_PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg",
                  "hubble_deep_field.jpg", "retina.jpg", "moon.png", "coins.png", "brick.png", "grass.png",
                  "gravel.png", "clock_motion.png", "ihc.png", "page.png")


def photographs() -> dict[str, np.ndarray]:
    "Real photographs found on this machine: matplotlib's portrait, and scikit-image's data where installed."
    import matplotlib.cbook
    from paligemma.processor import to_rgb_uint8
    photos = {"grace_hopper.jpg (matplotlib)": to_rgb_uint8(matplotlib.cbook.get_sample_data("grace_hopper.jpg",
                                                                                          asfileobj=False))}
    try: import skimage
    except ImportError: return photos
    data = Path(skimage.__file__).parent / "data"
    photos |= {f"{name} (scikit-image)": to_rgb_uint8(data / name) for name in SKIMAGE_PHOTOS if (data / name).is_file()}
    return photos


def faces() -> list[np.ndarray]:
    "scikit-image's 200 grayscale faces of Labeled Faces in the Wild, as RGB uint8 (none without scikit-image)."
    try: import skimage
    except ImportError: return []
    path = Path(skimage.__file__).parent / "data" / "lfw_subset.npy"
    if not path.is_file(): return []
    return [np.repeat(np.round(f * 255).astype(np.uint8)[..., None], 3, -1) for f in np.load(path)]


def as_jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def write_section(text: str) -> None:
    "Replace this script's section of RESULTS.md (read afresh: other benchmarks write their own sections)."
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"{HEADING}\n\n{text}\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old): new = pattern.sub(lambda _: section + "\n", old, count=1).rstrip("\n") + "\n"
    else: new = old.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="fresh scenes for calibration, and as many for the check")
    ap.add_argument("--no-write", action="store_true", help="print the results only")
    args = ap.parse_args()
    from paligemma.demo.shapes import random_scene
    from paligemma.demo.tiny_model import CONFIDENCE_THRESHOLD, caption_confidence, load_tiny
    model, tokenizer, _ = load_tiny()
    score = lambda images: caption_confidence(model, tokenizer, images, batch_size=100)
    start = time.perf_counter()
    calibration_rng, check_rng = np.random.default_rng(CALIBRATION_SEED), np.random.default_rng(CHECK_SEED)
    calibration = score([random_scene(calibration_rng)[0] for _ in range(args.n)])
    check_scenes = [random_scene(check_rng)[0] for _ in range(args.n)]
    check, jpeg = score(check_scenes), score([as_jpeg(s) for s in check_scenes])
    photos = photographs()
    photo_scores = dict(zip(photos, score(list(photos.values()))))
    face_scores = score(faces()) if faces() else np.zeros(0)
    seconds = time.perf_counter() - start

    t = CONFIDENCE_THRESHOLD
    flagged = lambda s: f"{np.mean(np.asarray(s) < t):.1%} ({int(np.sum(np.asarray(s) < t))} of {len(s)})"
    pct = np.percentile(calibration, [0.5, 1, 2, 5, 50])
    lines = [
        f"Command: `python bench/unfamiliar_images.py --n {args.n}` ({seconds:.0f} s). Score: the mean log-probability "
        f"per token of the shipped model's greedy `caption en` answer (`caption_confidence`). Shipped threshold "
        f"`CONFIDENCE_THRESHOLD = {t}`; below it `generate` prints `image_notice`'s line.",
        "",
        f"Calibration, {args.n} fresh scenes (seed {CALIBRATION_SEED}): percentiles 0.5 / 1 / 2 / 5 / 50 of the score = "
        + " / ".join(f"{p:.4f}" for p in pct) + f" (the 1st percentile, rounded, is the threshold).",
        "",
        "| images | flagged (score below the threshold) |",
        "|---|---|",
        f"| {args.n} other fresh scenes (seed {CHECK_SEED}): false alarms | {flagged(check)} |",
        f"| the same scenes saved as JPEG, quality 75 | {flagged(jpeg)} |",
        f"| photographs (listed below): hits | {flagged(list(photo_scores.values()))} |",
    ]
    if len(face_scores): lines.append(f"| faces, Labeled Faces in the Wild (scikit-image's 200, 25 x 25 px): hits | "
                                       f"{flagged(face_scores)} |")
    lines += ["", "| photograph | score | notice |", "|---|---|---|"]
    lines += [f"| {name} | {s:.3f} | {'yes' if s < t else 'no'} |" for name, s in photo_scores.items()]
    text = "\n".join(lines)
    print(text)
    if not args.no_write: write_section(text)


if __name__ == "__main__":
    main()
