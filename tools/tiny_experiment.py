"""Tiny-model recipe experiments (issue 6): train the shapes tasks with a given model and data shape, and print the
held-out metrics of `paligemma.demo.tiny_model.evaluate` at the `--evals` steps and at the end.

The defaults are the shipped recipe (`26_demo_tiny_model`). Example, captions only, a narrower ViT:
    python tools/tiny_experiment.py --weights 1,0,0,0 --steps 800 --vit-width 96 --evals 400
Without the image tower's own stage (`pretrain_vit`): --vit-steps 0. Kinds the image lacks asked from step 1500 only:
    python tools/tiny_experiment.py --absent 0.25 --absent-from 1500 --evals 1500,2500
The last stage alone (ABSENT_STAGE), from the 3,500-step weights of commit 9dcb7b5 saved as old.npz:
    python tools/tiny_experiment.py --init old.npz --vit-steps 0 --steps 200 --lr 5e-4 --warmup 50 --absent 0.1
"""
import argparse
import dataclasses
import json
import time

import numpy as np

import paligemma.demo.tiny_model as pre
import paligemma.demo.shapes as shapes
from paligemma.finetune import make_optimizer, train_step
from paligemma.demo.mask_vae import load_shapes_vae
from paligemma.tokenizer import Tokenizer

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--image-size", type=int, default=pre.TINY_IMAGE_SIZE)
p.add_argument("--patch", type=int, default=12)
p.add_argument("--vit-width", type=int, default=128)
p.add_argument("--vit-depth", type=int, default=3)
p.add_argument("--vit-heads", type=int, default=4)
p.add_argument("--llm-width", type=int, default=128)
p.add_argument("--llm-depth", type=int, default=4)
p.add_argument("--min-size", type=float, default=0.3, help="shape side, fraction of the image side")
p.add_argument("--max-size", type=float, default=0.5)
p.add_argument("--lr", type=float, default=1.5e-3)
p.add_argument("--steps", type=int, default=3500)
p.add_argument("--vit-steps", type=int, default=1000, help="steps of pretrain_vit (patch labels) first")
p.add_argument("--batch-size", type=int, default=16)
p.add_argument("--warmup", type=int, default=200)
p.add_argument("--weights", default=",".join(str(w) for w in pre.TASK_WEIGHTS.values()),
               help=f"task weights for {', '.join(pre.TASK_WEIGHTS)}")
p.add_argument("--single", type=int, default=0, help="steps of single-shape scenes first (a curriculum)")
p.add_argument("--absent", type=float, default=shapes.ABSENT,
               help="share of detect/segment examples asking for a kind the image lacks")
p.add_argument("--absent-from", type=int, default=0, help="step from which absent kinds are asked (before: none)")
p.add_argument("--init", default="", help="start from this checkpoint (e.g. an earlier shipped model) instead of scratch")
p.add_argument("--evals", default="", help="comma-separated steps to evaluate at, besides the last")
a = p.parse_args()

# the data's shape: make_example and evaluate draw scenes through these module-level names
scene, single = shapes.random_scene, [False]


def random_scene(rng, image_size=a.image_size, num_shapes=None, **_):
    n = 1 if single[0] and num_shapes is None else num_shapes
    return scene(rng, image_size, n, min_size=a.min_size, max_size=a.max_size)


shapes.random_scene = pre.random_scene = random_scene

tokenizer = Tokenizer(pre.TINY_TOKENIZER)
encoder, decoder = load_shapes_vae()
base = pre.tiny_config(tokenizer.vocab_size)
config = dataclasses.replace(
    base, image_size=a.image_size,
    vit=base.vit.replace(width=a.vit_width, depth=a.vit_depth, mlp_dim=4 * a.vit_width, num_heads=a.vit_heads,
                         patch_size=a.patch),
    llm=base.llm.replace(width=a.llm_width, depth=a.llm_depth, mlp_dim=4 * a.llm_width))
if a.init:
    from paligemma.checkpoints import load_checkpoint
    model = load_checkpoint(a.init, progress=False)
else:
    model = pre.init_from_scratch(config, tokenizer)
start = time.time()
if a.vit_steps:
    classifier, _ = pre.pretrain_vit(model, steps=a.vit_steps, seed=2)
    print(f"image tower: {pre.patch_accuracy(classifier)}  {time.time() - start:.0f} s", flush=True)
vit_time = time.time() - start
weights = {k: w for k, w in zip(pre.TASK_WEIGHTS, map(float, a.weights.split(","))) if w > 0}
optimizer = make_optimizer(model, a.lr, a.steps, warmup=a.warmup, weight_decay=1e-4, b2=0.98)
data = pre.task_batches(1, a.batch_size, tokenizer, encoder, image_size=a.image_size, weights=weights, absent=a.absent)
early = pre.task_batches(1, a.batch_size, tokenizer, encoder, image_size=a.image_size, weights=weights, absent=0.0)
evals = {int(s) for s in a.evals.split(",") if s} | {a.steps}
train_time, losses, results = vit_time, [], []  # times count from the start of the image tower's stage
for step in range(1, a.steps + 1):
    single[0] = step <= a.single
    batch = next(early if step <= a.absent_from else data)
    t = time.time()
    losses.append(float(train_step(model, optimizer, batch)[0]))
    train_time += time.time() - t
    if step % 200 == 0: print(f"step {step}  loss {np.mean(losses[-200:]):.4f}  {time.time() - start:.0f} s", flush=True)
    if step in evals:
        r = pre.evaluate(model, tokenizer, decoder)
        results.append(dict(step=step, time=round(time.time() - start), train_time=round(train_time),
                            **{k: round(float(r[k]), 3) for k in ("caption", "count", "detect", "segment",
                                                                    "detect_fp", "segment_fp")}))
        print(results[-1], flush=True)
print("RESULT", json.dumps(vars(a)), json.dumps(results), flush=True)
