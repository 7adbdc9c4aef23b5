import time, statistics, jax, jax.numpy as jnp, numpy as np
V = 257152
def bench(name, f, *args, reps=7):
    c = jax.jit(f).lower(*args).compile()
    jax.block_until_ready(c(*args))
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); jax.block_until_ready(c(*args)); ts.append(time.perf_counter() - t)
    print(f"{name:40} {1e3*statistics.median(ts):8.2f} ms", flush=True)
for B in (1, 8):
    print("batch", B)
    l = jnp.asarray(np.random.default_rng(0).normal(size=(B, V)) * 3, jnp.float32)
    key = jax.random.key(0)
    bench("max+where+min (Greedy)", lambda l: jnp.min(jnp.where(l == l.max(-1, keepdims=True), jnp.arange(V), V), -1), l)
    bench("logsumexp", lambda l: jax.nn.logsumexp(l, -1), l)
    for k in (64, 256, 1024):
        bench(f"lax.top_k {k}", lambda l, k=k: jax.lax.top_k(l, k), l)
    bench("argsort", lambda l: jnp.argsort(-l, -1), l)
    bench("categorical (gumbel, threefry)", lambda l, k: jax.random.categorical(k, l), l, key)
    bench("categorical (gumbel, rbg key)", lambda l, k: jax.random.categorical(k, l), l, jax.random.key(0, impl="rbg"))
    bench("uniform bits only threefry", lambda l, k: jax.random.uniform(k, l.shape), l, key)
    bench("exp pass", lambda l: jnp.exp(l - l.max(-1, keepdims=True)).sum(-1), l)
    bench("cumsum over V", lambda l: jnp.cumsum(l, -1), l)
    def bisect(l):
        lo = jnp.full(l.shape[:1], -1e9); hi = l.max(-1)
        p = jax.nn.softmax(l, -1)
        def body(i, s):
            lo, hi = s
            mid = (lo + hi) / 2
            m = jnp.sum(jnp.where(l >= mid[:, None], p, 0), -1)
            ok = m >= 0.9
            return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)
        return jax.lax.fori_loop(0, 32, body, (lo, hi))
    bench("bisection 32 passes", bisect, l)
