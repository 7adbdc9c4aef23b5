"Prefill cost, today's (attends over the whole cache) against the prototype's (only the prefix's keys)."
import sys; sys.path.insert(0, "bench")
import jax, jax.numpy as jnp
from flax import nnx
import decode_prototype as proto, hlo_bytes
from paligemma.gemma import cache as today
from paligemma.gemma.transformer import GemmaConfig, Transformer
B, T, S = 8, 1040, 8192
for stacked in (False,):
    cfg = GemmaConfig.gemma2_2b(depth=4, vocab_size=256, stack_layers=stacked)
    g, st = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
    sds = jax.ShapeDtypeStruct
    args = (st, sds((B, T, cfg.width), jnp.float32), sds((B, T), jnp.int32), sds((B, T, T), bool), sds((B,), jnp.int32))
    for name, mod, cache in (("today", today, jax.eval_shape(lambda: today.KVCache.create(cfg, B, S))),
                             ("proto", proto, jax.eval_shape(lambda: proto.Cache.create(cfg, B, S)))):
        c = jax.jit(lambda st, x, p, m, l, c: mod.prefill(nnx.merge(g, st), x, p, m, l, c), donate_argnums=5).lower(*args, cache).compile()
        ca = c.cost_analysis()
        print(f"{name}: prefill T={T} into S={S}, batch {B}, 4 layers Gemma 2 2B width: {ca['flops']/1e12:.2f} TFLOP, "
              f"HLO bytes moved {hlo_bytes.walk(c.as_text())[0]/1e9:.1f} GB, XLA temp {c.memory_analysis().temp_size_in_bytes/1e9:.2f} GB")
