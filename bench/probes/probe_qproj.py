"The query projection at decode: batched per head (stacked_matmul) against one matmul over a [D, N*H] weight."
import time, statistics, jax, jax.numpy as jnp, numpy as np
from paligemma.gemma.layers import stacked_matmul
rng = np.random.default_rng(0)
for N, D, H in ((8, 512, 64), (8, 2048, 256)):
    w = jnp.asarray(rng.normal(size=(N, D, H)), jnp.float32)
    wt = jnp.asarray(np.ascontiguousarray(np.asarray(w).transpose(1, 0, 2).reshape(D, N * H)))
    fs = {}
    for M in (1, 8):
        x = jnp.asarray(rng.normal(size=(M, D)), jnp.float32)
        fs[f"M={M} stacked_matmul [N,D,H]"] = (jax.jit(stacked_matmul), (x, w))
        fs[f"M={M} einsum MD,NDH->NMH"] = (jax.jit(lambda x, w: jnp.einsum("MD,NDH->NMH", x, w)), (x, w))
        fs[f"M={M} matmul [D,N*H]"] = (jax.jit(jnp.matmul), (x, wt))
        fs[f"M={M} dot_general lhs=w contracting D"] = (jax.jit(lambda x, w: jax.lax.dot_general(w, x, (((1,), (1,)), ((), ())))), (x, w))
    for f, a in fs.values(): jax.block_until_ready(f(*a))
    ts = {k: [] for k in fs}
    for _ in range(15):
        for k, (f, a) in fs.items():
            t = time.perf_counter(); jax.block_until_ready(f(*a)); ts[k].append(time.perf_counter() - t)
    print(f"N={N} D={D} H={H}: weight {w.nbytes/1e6:.1f} MB")
    for k in fs: print(f"   {k:40} {1e3*statistics.median(ts[k]):7.2f} ms")
