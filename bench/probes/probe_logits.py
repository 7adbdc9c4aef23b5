import os, time, statistics, jax, jax.numpy as jnp, numpy as np
V, D = 257152, 512
t_ = jnp.asarray(np.random.default_rng(0).normal(size=(V, D)).astype(np.float32))
def bench(f, *a, reps=5):
    c = jax.jit(f).lower(*a).compile(); jax.block_until_ready(c(*a)); ts = []
    for _ in range(reps):
        t = time.perf_counter(); jax.block_until_ready(c(*a)); ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts), "ynn" in c.as_text()
ref = bench(lambda t: t * 2.0, t_)[0]  # one read + one write of the table
out = [f"flags={os.environ.get('XLA_FLAGS', '')!r}", f"table*2 {ref:.1f} ms"]
for M in (1, 8):
    x = jnp.ones((M, 1, D))
    ms, ynn = bench(lambda t, x: jnp.einsum("BTD,VD->BTV", x, t), t_, x)
    out.append(f"M={M}: {ms:.1f} ms ({ms / ref:.2f}x table*2){' ynn' if ynn else ''}")
print(" | ".join(out))
