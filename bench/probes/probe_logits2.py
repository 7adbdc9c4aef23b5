import time, statistics, jax, jax.numpy as jnp, numpy as np
V, D = 257152, 512
rng = np.random.default_rng(0)
tab = jnp.asarray(rng.normal(size=(V, D)).astype(np.float32))
tabT = jnp.asarray(np.ascontiguousarray(np.asarray(tab).T))
fs = {}
for M in (1, 8):
    x = jnp.ones((M, 1, D))
    fs[f"M={M} BTD,VD->BTV"] = (jax.jit(lambda t, x: jnp.einsum("BTD,VD->BTV", x, t)), (tab, x))
    fs[f"M={M} BTD,DV->BTV"] = (jax.jit(lambda t, x: jnp.einsum("BTD,DV->BTV", x, t)), (tabT, x))
fs["read table (sum)"] = (jax.jit(lambda t: t.sum(0)), (tab,))
for f, a in fs.values(): jax.block_until_ready(f(*a))
ts = {k: [] for k in fs}
for _ in range(9):
    for k, (f, a) in fs.items():
        t = time.perf_counter(); jax.block_until_ready(f(*a)); ts[k].append(time.perf_counter() - t)
ref = statistics.median(ts["read table (sum)"])
for k in fs: print(f"{k:22} {1e3*statistics.median(ts[k]):7.1f} ms  {statistics.median(ts[k])/ref:.2f}x reading the table once")
