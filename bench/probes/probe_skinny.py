"How the tied-logits matmul [M, 512] x [257152, 512]^T scales with M (rows): time, GFLOP/s, table GB/s."
import time, statistics, jax, jax.numpy as jnp, numpy as np
V, D = 257152, 512
tab = jnp.asarray(np.random.default_rng(0).normal(size=(V, D)).astype(np.float32))
Ms = (1, 2, 4, 8, 16, 32, 64)
fs = {M: (jax.jit(lambda t, x: jnp.einsum("BD,VD->BV", x, t)), jnp.ones((M, D))) for M in Ms}
big = jnp.ones((2048, 2048)); fb = jax.jit(lambda a: a @ a)
for f, x in fs.values(): jax.block_until_ready(f(tab, x))
jax.block_until_ready(fb(big))
ts = {M: [] for M in Ms}; tb = []
for _ in range(7):
    for M, (f, x) in fs.items():
        t = time.perf_counter(); jax.block_until_ready(f(tab, x)); ts[M].append(time.perf_counter() - t)
    t = time.perf_counter(); jax.block_until_ready(fb(big)); tb.append(time.perf_counter() - t)
print(f"2048^3 matmul: {2 * 2048**3 / statistics.median(tb) / 1e9:.0f} GFLOP/s")
for M in Ms:
    t = statistics.median(ts[M])
    print(f"M={M:3}: {1e3*t:7.1f} ms, {2*M*V*D/t/1e9:6.1f} GFLOP/s, table read at {V*D*4/t/1e9:5.1f} GB/s")
