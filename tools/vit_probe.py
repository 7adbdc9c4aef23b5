"""The tiny ViT alone, trained to name the kind of a single shape: how fast patches of a given size learn outlines.
Usage: python tools/vit_probe.py IMAGE_SIZE PATCH LR STEPS SINCOS MIN_SIZE MAX_SIZE  (e.g. 72 12 1.5e-3 750 1 0.3 0.5)
"""
import sys, time, numpy as np, jax, jax.numpy as jnp, optax
from flax import nnx
from paligemma.vit.model import ViT, ViTConfig
from paligemma.shapes import random_scene, SHAPES
import paligemma.pretrained as pre
MINS, MAXS = float(sys.argv[6]), float(sys.argv[7])
S, patch = int(sys.argv[1]), int(sys.argv[2]); lr = float(sys.argv[3]); steps = int(sys.argv[4]); sincos = int(sys.argv[5])
class Clf(nnx.Module):
    def __init__(self, rngs):
        self.vit = ViT(ViTConfig(width=128, depth=3, mlp_dim=512, num_heads=4, patch_size=patch), S, 128, rngs=rngs)
        if sincos: self.vit.pos_embedding.set_value(jnp.asarray(pre.sincos_2d(S // patch, 128))[None])
        self.out = nnx.Linear(128, 3, rngs=rngs)
    def __call__(self, x): return self.out(self.vit(x).mean(1))
m = Clf(nnx.Rngs(0))
opt = nnx.Optimizer(m, optax.adamw(optax.warmup_cosine_decay_schedule(0, lr, 100, steps), weight_decay=1e-4), wrt=nnx.Param)
@nnx.jit
def step(m, opt, x, y):
    def loss(m): return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()
    l, g = nnx.value_and_grad(loss)(m); opt.update(m, g); return l
rng = np.random.default_rng(0)
def batch(n):
    sc = [random_scene(rng, S, num_shapes=1, min_size=MINS, max_size=MAXS) for _ in range(n)]
    return (np.stack([i for i, _ in sc]).astype(np.float32) / 127.5 - 1, np.array([SHAPES.index(o[0].kind) for _, o in sc]))
xt, yt = batch(500)
t0 = time.time()
for i in range(steps):
    x, y = batch(16); l = step(m, opt, x, y)
    if (i + 1) % 250 == 0:
        acc = (np.asarray(nnx.jit(lambda m, x: m(x))(m, xt)).argmax(-1) == yt).mean()
        print(i + 1, float(l), "acc", acc, round(time.time() - t0), flush=True)
