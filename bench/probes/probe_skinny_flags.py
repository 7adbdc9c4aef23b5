import os, time, statistics, jax, jax.numpy as jnp, numpy as np
V, D = 257152, 512
tab = jnp.asarray(np.random.default_rng(0).normal(size=(V, D)).astype(np.float32))
f = jax.jit(lambda t, x: jnp.einsum("BD,VD->BV", x, t))
r = jax.jit(lambda t: t.sum(0))
out = []
for M in (1, 8):
    x = jnp.ones((M, D)); c = f.lower(tab, x).compile(); jax.block_until_ready(c(tab, x)); jax.block_until_ready(r(tab))
    ts, tr = [], []
    for _ in range(7):
        t = time.perf_counter(); jax.block_until_ready(c(tab, x)); ts.append(time.perf_counter() - t)
        t = time.perf_counter(); jax.block_until_ready(r(tab)); tr.append(time.perf_counter() - t)
    kind = "ynn" if "__ynn" in c.as_text() else ("xnn" if "__xnn" in c.as_text() else ("onednn" if "onednn" in c.as_text().lower() else "other"))
    out.append(f"M={M} {1e3*statistics.median(ts):.1f} ms ({statistics.median(ts)/statistics.median(tr):.2f}x a table read, {kind})")
print(os.environ.get("XLA_FLAGS", "default"), "|", " | ".join(out))
