import jax, jax.numpy as jnp
from flax import nnx
from paligemma.gemma.transformer import GemmaConfig, Transformer
from paligemma.gemma.cache import KVCache, extend
import sys
V = int(sys.argv[1]); S = int(sys.argv[2]); stack = sys.argv[3] == "stacked"
cfg = GemmaConfig.gemma2_2b(depth=4, vocab_size=V, stack_layers=stack)
llm = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
g, st = nnx.split(llm)
cache = jax.eval_shape(lambda: KVCache.create(cfg, 8, S))
def f(st, tokens, cache):
    return extend(nnx.merge(g, st), tokens, cache)
c = jax.jit(f, donate_argnums=2).lower(st, jax.ShapeDtypeStruct((8,), jnp.int32), cache).compile()
wb = sum(a.size*a.dtype.itemsize for a in jax.tree.leaves(st))
cb = cache.k.size*4*2
ba = c.cost_analysis()["bytes accessed"]
print(V, S, stack, f"weights {wb/1e9:.3f} cache {cb/1e9:.3f} accessed {ba/1e9:.2f} ratio {ba/(wb+cb):.2f}")
open(f"/tmp/hlo_{V}_{S}_{stack}.txt","w").write(c.as_text())
