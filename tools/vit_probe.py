"""The tiny model's ViT alone, trained to name the kind of a single shape: how fast patches of a given size learn to
see outlines (issue 6). Prints held-out accuracy every 250 steps.

    python tools/vit_probe.py --image-size 72 --patch 12 --steps 1000
"""
import argparse
import time

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from paligemma.demo.tiny_model import sincos_2d
from paligemma.demo.shapes import SHAPES, random_scene
from paligemma.vit.model import ViT, ViTConfig

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--image-size", type=int, default=72)
p.add_argument("--patch", type=int, default=12)
p.add_argument("--lr", type=float, default=1.5e-3)
p.add_argument("--steps", type=int, default=1000)
p.add_argument("--min-size", type=float, default=0.3)
p.add_argument("--max-size", type=float, default=0.5)
a = p.parse_args()
S, width = a.image_size, 128


class Probe(nnx.Module):
    "The tiny model's ViT (sin-cos start of its position embedding, as there), mean-pooled, then a linear classifier."
    def __init__(self, rngs):
        self.vit = ViT(ViTConfig(width=width, depth=3, mlp_dim=4 * width, num_heads=4, patch_size=a.patch), S, width,
                       rngs=rngs)
        self.vit.pos_embedding.set_value(jnp.asarray(sincos_2d(S // a.patch, width))[None])
        self.out = nnx.Linear(width, len(SHAPES), rngs=rngs)

    def __call__(self, x): return self.out(self.vit(x).mean(1))


@nnx.jit
def step(model, optimizer, x, y):
    def loss(model): return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
    value, grads = nnx.value_and_grad(loss)(model)
    optimizer.update(model, grads)
    return value


rng = np.random.default_rng(0)


def batch(n):
    scenes = [random_scene(rng, S, num_shapes=1, min_size=a.min_size, max_size=a.max_size) for _ in range(n)]
    return (np.stack([im for im, _ in scenes]).astype(np.float32) / 127.5 - 1,
            np.array([SHAPES.index(objects[0].kind) for _, objects in scenes]))


model = Probe(nnx.Rngs(0))
schedule = optax.warmup_cosine_decay_schedule(0.0, a.lr, 100, a.steps)
optimizer = nnx.Optimizer(model, optax.adamw(schedule, weight_decay=1e-4), wrt=nnx.Param)
x_test, y_test = batch(500)
predict = nnx.jit(lambda model, x: model(x).argmax(-1))
start = time.time()
for i in range(1, a.steps + 1):
    loss = step(model, optimizer, *batch(16))
    if i % 250 == 0:
        accuracy = float((np.asarray(predict(model, x_test)) == y_test).mean())
        print(f"step {i}  loss {float(loss):.3f}  accuracy {accuracy:.3f}  {time.time() - start:.0f} s", flush=True)
