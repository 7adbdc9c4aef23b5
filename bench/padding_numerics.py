"""Losses of `finetune` with the text padded to 64 tokens (what `paligemma finetune` did) and to the longest example.

Run: python bench/padding_numerics.py [--steps 20] [--package DIR]

The README's 512 shapes scenes (seed 0, "answer en how many shapes in words?"), the shipped tiny model, the recipe's
settings ("all", lr 1e-3, batch 16, 200 steps of schedule), each width in a fresh child process with `--package`
(default: this checkout) first on the path. Padded positions are masked out of attention (`input_mask`) and of the
loss (`loss_mask`), so the losses may differ only by float32 rounding (sums over other lengths). Also prints the
losses as JSON so two packages can be compared to the bit (run it once per package).
"""
from __future__ import annotations
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys
import numpy as np
from paligemma import Processor, load_tiny
from paligemma.demo.shapes import random_scene
from paligemma.finetune import finetune
steps, max_len = int(sys.argv[1]), (None if sys.argv[2] == "None" else int(sys.argv[2]))
rng = np.random.default_rng(0)
scenes = [random_scene(rng) for _ in range(512)]
model, tokenizer, _ = load_tiny()
processor = Processor(tokenizer, model.config.image_size)
examples = [dict(image=processor.image(image), prefix="answer en how many shapes in words?",
                 suffix=["one", "two", "three"][len(objects) - 1]) for image, objects in scenes]
losses = []
finetune(model, tokenizer, examples, "all", lr=1e-3, batch_size=16, steps=200, max_len=max_len,
         on_step=lambda step, loss: (losses.append(loss), step == steps - 1 and sys.exit(print(json.dumps(losses)))))
"""


def losses(package: Path, steps: int, max_len) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(package)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(max_len)], env=env, capture_output=True,
                          text=True)
    if done.returncode: raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--package", type=Path, default=ROOT)
    args = ap.parse_args()
    wide, narrow = losses(args.package.resolve(), args.steps, 64), losses(args.package.resolve(), args.steps, None)
    rel = np.abs(np.array(wide) - np.array(narrow)) / np.abs(np.array(wide))
    print(json.dumps(dict(max_len_64=wide, longest=narrow)))
    print(f"steps equal to the bit: {sum(a == b for a, b in zip(wide, narrow))} of {args.steps}; first differing step: "
          f"{next((i for i, (a, b) in enumerate(zip(wide, narrow)) if a != b), None)}; "
          f"relative difference: step 0 {rel[0]:.1e}, max over the first 5 {rel[:5].max():.1e}, all {rel.max():.1e}")


if __name__ == "__main__":
    main()
