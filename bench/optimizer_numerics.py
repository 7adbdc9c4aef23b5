"""`make_optimizer`'s numerics across a change: the losses and final parameters of 6 train steps of a random
PaliGemma in 5 optimizer settings, and the programs the steps traced, saved to an .npz.

    PYTHONPATH=<old checkout> python bench/optimizer_numerics.py old.npz
    PYTHONPATH=. python bench/optimizer_numerics.py new.npz
    python bench/optimizer_numerics.py --compare old.npz new.npz"""
import sys, time, os
if sys.argv[1] == "--compare":
    import numpy as np
    a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
    assert sorted(a) == sorted(b)
    print(f"{sum(np.array_equal(a[k], b[k]) for k in a)} of {len(a)} arrays equal to the bit; largest gap "
          f"{max(float(np.abs(a[k] - b[k]).max()) for k in a):.1e}")
    sys.exit()
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
jax.config.update("jax_default_matmul_precision", "float32")
from paligemma.model import PaliGemma, PaliGemmaConfig
from paligemma.vit.model import ViTConfig
from paligemma.gemma.transformer import GemmaConfig
from paligemma.finetune import make_optimizer, train_step, trainable_filter
TRACED = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, s, **kw: TRACED.append(event) if event == "/jax/core/compile/jaxpr_trace_duration" else None)
from paligemma.lora import add_lora
cfg = PaliGemmaConfig(ViTConfig(width=36, depth=2, mlp_dim=60, num_heads=3),
                      GemmaConfig(vocab_size=61, width=48, depth=3, mlp_dim=80, num_heads=3, num_kv_heads=1, head_dim=14), image_size=42)
rng = np.random.default_rng(0)
B, T = 4, 9
batch = dict(images=jnp.asarray(rng.uniform(-1, 1, (B, 42, 42, 3)), jnp.float32), tokens=jnp.asarray(rng.integers(1, 61, (B, T))),
             input_mask=jnp.ones((B, T), bool), mask_ar=jnp.asarray(np.r_[[0] * 4, [1] * 5][None].repeat(B, 0)),
             loss_mask=jnp.asarray(np.r_[[0] * 4, [1] * 5][None].repeat(B, 0)))
out = {}
settings = [("all", dict(lr=3e-3, steps=8, warmup=2)), ("all", dict(lr=1e-3, steps=12, warmup=0)),
            ("all", dict(lr=1.5e-3, steps=9, warmup=4, weight_decay=1e-4, b2=0.98)),
            ("lora", dict(lr=2e-2, steps=7, warmup=1, clip_norm=None)), ("attention", dict(lr=5e-4, steps=6, warmup=5, weight_decay=1e-4))]
cpu0 = time.process_time()
for i, (kind, hp) in enumerate(settings):
    model = PaliGemma(cfg, rngs=nnx.Rngs(0))
    if kind == "lora": add_lora(model, 4, rngs=nnx.Rngs(1))
    opt = make_optimizer(model, hp.pop("lr"), hp.pop("steps"), **hp, wrt=trainable_filter(kind))
    n0 = len(TRACED)
    losses = [float(train_step(model, opt, batch)[0]) for _ in range(6)]
    print(i, kind, "programs traced", len(TRACED) - n0, "losses", losses[:2], losses[-1])
    out[f"losses{i}"] = np.asarray(losses)
    for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param)): out[f"p{i}/" + "/".join(map(str, k))] = np.asarray(v[...])
print("cpu", time.process_time() - cpu0)
np.savez(sys.argv[1], **out)
