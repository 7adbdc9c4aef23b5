"Copies in the batch-8 decode step of the bench-small decoder (today's cache and the prototype's), from shapes."
import sys; sys.path.insert(0, "bench")
import jax, jax.numpy as jnp
from flax import nnx
import decode_prototype as proto, hlo_bytes
from common import config_for
from paligemma.gemma import cache as today
from paligemma.gemma.transformer import Transformer
from paligemma.sampler import Greedy, sample_logits
config = config_for("paligemma-bench-small")
B, S = 8, 256 + 16 + 32 - 1
g, st = nnx.split(nnx.eval_shape(lambda: Transformer(config.llm, rngs=nnx.Rngs(0))))
weights = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(st))
for name, mod, cache in (("today", today, jax.eval_shape(lambda: today.KVCache.create(config.llm, B, S))),
                         ("proto", proto, jax.eval_shape(lambda: proto.Cache.create(config.llm, B, S)))):
    def step(st, t, c, key):
        logits, c = mod.extend(nnx.merge(g, st), t, c)
        return sample_logits(logits, key, Greedy()), c
    c = jax.jit(step, donate_argnums=2).lower(st, jax.ShapeDtypeStruct((B,), jnp.int32), cache, jax.eval_shape(lambda: jax.random.key(0))).compile()
    moved, moves, _ = hlo_bytes.walk(c.as_text())
    kv = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves((cache.k, cache.v)))
    print(f"{name}: weights {weights/1e6:.1f} MB + cache {kv/1e6:.1f} MB; moved {moved/1e6:.1f} MB ({moved/(weights+kv):.2f}x); "
          f"copies of 256 kB or more: {sum(m.nbytes * m.times for m in moves if m.nbytes >= 1 << 18)/1e6:.1f} MB")
    for r in hlo_bytes.report(moves, 1 << 18): print("   ", r)
    # the largest ops by bytes
    comps, entry = hlo_bytes.parse(c.as_text())
    rows = []
    types = {i.name: i.type for i in comps[entry]}
    for i in comps[entry]:
        if i.opcode in hlo_bytes.FREE or i.opcode == "while": continue
        b = hlo_bytes.fusion_bytes(comps, i, [types.get(o, "") for o in i.operands]) if i.opcode == "fusion" else sum(hlo_bytes.type_bytes(types.get(o, "")) for o in i.operands) + i.nbytes
        rows.append((b, i.name, i.type.split("{")[0][:40]))
    for b, n, t in sorted(rows, reverse=True)[:12]: print(f"      {b/1e6:8.1f} MB {n} {t}")
