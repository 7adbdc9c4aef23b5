"""Tiny-model recipe experiments (issue 6): train `steps` steps of the shapes tasks with a given shape of model and
data, and print the held-out metrics at `--evals` steps. Results of the runs so far are in 18_tiny_model and the
issue notes. Example: python tools/tiny_experiment.py --w 1,0,0,0 --steps 800 --lw 128 --tag caption_only
"""
import argparse, time, functools, json, sys
import numpy as np, jax, jax.numpy as jnp
from flax import nnx
import paligemma.shapes as shapes, paligemma.pretrained as pre
from paligemma.tokenizer import Tokenizer
from paligemma.model import PaliGemmaConfig
from paligemma.vit.model import ViTConfig
from paligemma.gemma.transformer import GemmaConfig
from paligemma.finetune import make_optimizer, train_step
p = argparse.ArgumentParser()
p.add_argument("--S", type=int, default=96); p.add_argument("--patch", type=int, default=16)
p.add_argument("--vw", type=int, default=128); p.add_argument("--vd", type=int, default=3); p.add_argument("--vh", type=int, default=4)
p.add_argument("--lw", type=int, default=192); p.add_argument("--ld", type=int, default=4)
p.add_argument("--minsz", type=float, default=0.2); p.add_argument("--maxsz", type=float, default=0.42)
p.add_argument("--lr", type=float, default=1.5e-3); p.add_argument("--steps", type=int, default=800)
p.add_argument("--bs", type=int, default=16); p.add_argument("--warmup", type=int, default=200)
p.add_argument("--w", default="0.4,0.1,0.25,0.25"); p.add_argument("--n", type=int, default=200)
p.add_argument("--evals", default=""); p.add_argument("--single", type=int, default=0); p.add_argument("--tag", default="")
a = p.parse_args()
orig = shapes.random_scene
SINGLE = [False]
def rs(rng, image_size=a.S, num_shapes=None, min_size=a.minsz, max_size=a.maxsz, min_gap=0.08):
    return orig(rng, image_size, 1 if SINGLE[0] and num_shapes is None else num_shapes, min_size, max_size, min_gap)
shapes.random_scene = rs; pre.random_scene = rs
tok = Tokenizer(pre.TINY_TOKENIZER)
from paligemma.mask_vae import load_shapes_vae
enc, dec = load_shapes_vae()
V = -(-tok.vocab_size // 64) * 64
cfg = PaliGemmaConfig(ViTConfig(width=a.vw, depth=a.vd, mlp_dim=4 * a.vw, num_heads=a.vh, patch_size=a.patch),
                      GemmaConfig(vocab_size=V, width=a.lw, depth=a.ld, mlp_dim=4 * a.lw, num_heads=3, num_kv_heads=1, head_dim=64), a.S)
model = pre.init_from_scratch(cfg, tok, 0)
w = dict(zip(shapes.TASKS, map(float, a.w.split(","))))
w = {k: v for k, v in w.items() if v > 0}
opt = make_optimizer(model, a.lr, a.steps, warmup=a.warmup, weight_decay=1e-4, b2=0.98)
evals = {int(s) for s in a.evals.split(",") if s} | {a.steps}
t0 = time.time(); losses = []; res = []
gen = pre.task_batches(1, a.bs, tok, enc, image_size=a.S, weights=w)
def ev(step):
    m = {}
    r = pre.evaluate(model, tok, dec, n=a.n) if "segment" in w else None
    if r is None:
        # caption/count/detect only
        from paligemma.sampler import Sampler
        from paligemma.detection import parse_detections
        rng = np.random.default_rng(1_000_003)
        scenes = [rs(rng) for _ in range(a.n)]
        kinds = [o[rng.integers(len(o))].kind for _, o in scenes]
        ims = np.stack([i for i, _ in scenes]).astype(np.float32) / 127.5 - 1
        s = Sampler(model, tok)
        cap = s(ims, ["caption en"] * a.n, max_new_tokens=20)
        cnt = s(ims, [shapes.COUNT_PROMPT] * a.n, max_new_tokens=4)
        det = s(ims, [f"detect {k}" for k in kinds], max_new_tokens=24)
        ious = []
        for (_, o), k, d in zip(scenes, kinds, det):
            bx = [x["box"] for x in parse_detections(d, a.S)]
            for ob in (ob for ob in o if ob.kind == k): ious.append(max([pre.box_iou(b, ob.box) for b in bx], default=0.0))
        r = dict(caption=np.mean([c == shapes.caption_text(o) for c, (_, o) in zip(cap, scenes)]),
                 count=np.mean([c == str(len(o)) for c, (_, o) in zip(cnt, scenes)]), detect=float(np.mean(ious)), segment=-1)
    return {k: round(float(r[k]), 3) for k in ("caption", "count", "detect", "segment")}
train_time = 0
for step in range(a.steps):
    SINGLE[0] = step < a.single
    batch = next(gen)
    t = time.time(); loss, _ = train_step(model, opt, batch); loss = float(loss); train_time += time.time() - t
    losses.append(loss)
    if step % 200 == 0: print(step, np.mean(losses[-200:]), round(time.time() - t0), flush=True)
    if step + 1 in evals:
        r = ev(step + 1); r.update(step=step + 1, time=round(time.time() - t0), train_time=round(train_time)); res.append(r); print(r, flush=True)
print("RESULT", a.tag, json.dumps(vars(a)), json.dumps(res), flush=True)
