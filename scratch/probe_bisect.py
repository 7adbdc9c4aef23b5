"Bisection for the top_p boundary over [8, 257152]: on float32 logit keys (two arrays a pass) or on probability bits (one)."
import sys, time, statistics; sys.path.insert(0, "bench")
import jax, jax.numpy as jnp, numpy as np
import sampling_prototype as sp
l = jnp.asarray(np.random.default_rng(0).normal(size=(8, 257152)) * 0.2, jnp.float32)
def probs_bits(scaled, top_p):
    probs = jax.nn.softmax(scaled, axis=-1)
    keys = jax.lax.bitcast_convert_type(probs, jnp.int32)  # non-negative floats: bits in the same order
    def step(_, b):
        lo, hi = b
        mid = lo + (hi - lo + 1) // 2
        ok = jnp.sum(jnp.where(keys >= mid[:, None], probs, 0.0), -1) >= top_p
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)
    lo, _ = jax.lax.fori_loop(0, 31, step, (jnp.zeros(8, jnp.int32), jnp.max(keys, -1)))
    return lo
fs = {"logit keys (uint32 + probs)": jax.jit(lambda l: sp.nucleus_threshold(l, 0.9)),
      "probability bits": jax.jit(lambda l: probs_bits(l, 0.9)),
      "Greedy (reference)": jax.jit(lambda l: sp.Greedy().choose(l, None))}
for f in fs.values(): jax.block_until_ready(f(l))
ts = {k: [] for k in fs}
for _ in range(7):
    for k, f in fs.items():
        t = time.perf_counter(); jax.block_until_ready(f(l)); ts[k].append(time.perf_counter() - t)
for k in fs: print(f"{k:30} {1e3*statistics.median(ts[k]):7.1f} ms")
