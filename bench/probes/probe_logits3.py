"The tied logits at batch 8: the einsum against the same product in vocabulary chunks (sequential or batched)."
import time, statistics, jax, jax.numpy as jnp, numpy as np
V, D, B = 257152, 512, 8
rng = np.random.default_rng(0)
tab = jnp.asarray(rng.normal(size=(V, D)).astype(np.float32))
x = jnp.asarray(rng.normal(size=(B, D)).astype(np.float32))
def chunked_map(t, x, n=16):
    return jax.lax.map(lambda tc: jnp.einsum("BD,VD->BV", x, tc), t.reshape(n, V // n, D)).transpose(1, 0, 2).reshape(B, V)
def chunked_batch(t, x, n=16):
    return jax.lax.dot_general(jnp.broadcast_to(x, (n, B, D)), t.reshape(n, V // n, D), (((2,), (2,)), ((0,), (0,)))).transpose(1, 0, 2).reshape(B, V)
fs = {"einsum BD,VD->BV": jax.jit(lambda t, x: jnp.einsum("BD,VD->BV", x, t)),
      "lax.map over 16 chunks": jax.jit(chunked_map),
      "dot_general batched over 16 chunks": jax.jit(chunked_batch),
      "einsum, batch 1": jax.jit(lambda t, x: jnp.einsum("BD,VD->BV", x[:1], t)),
      "read the table (sum)": jax.jit(lambda t, x: t.sum(0))}
ref = fs["einsum BD,VD->BV"](tab, x)
for k, f in fs.items():
    out = jax.block_until_ready(f(tab, x))
    if out.shape == ref.shape: assert np.allclose(out, ref, atol=1e-3), k
ts = {k: [] for k in fs}
for _ in range(9):
    for k, f in fs.items():
        t = time.perf_counter(); jax.block_until_ready(f(tab, x)); ts[k].append(time.perf_counter() - t)
r = statistics.median(ts["read the table (sum)"])
for k in fs: print(f"{k:36} {1e3*statistics.median(ts[k]):7.1f} ms  {statistics.median(ts[k])/r:.2f}x a read of the table")
