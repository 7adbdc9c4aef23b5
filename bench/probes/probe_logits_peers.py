"The tied logits [8, 512] x [257152, 512]^T: XLA against numpy's BLAS and torch, same run, interleaved."
import time, statistics, numpy as np, jax, jax.numpy as jnp, torch
torch.set_num_threads(2)
V, D = 257152, 512
rng = np.random.default_rng(0)
tab = rng.normal(size=(V, D)).astype(np.float32)
res = {}
for B in (1, 8):
    x = rng.normal(size=(B, D)).astype(np.float32)
    jt, jx = jnp.asarray(tab), jnp.asarray(x)
    tt, tx = torch.from_numpy(tab), torch.from_numpy(x)
    f = jax.jit(lambda t, x: jnp.einsum("BD,VD->BV", x, t))
    fs = {f"B={B} XLA einsum": lambda: jax.block_until_ready(f(jt, jx)),
          f"B={B} numpy x @ table.T": lambda: x @ tab.T,
          f"B={B} torch F.linear": lambda: torch.nn.functional.linear(tx, tt)}
    for g in fs.values(): g()
    ts = {k: [] for k in fs}
    for _ in range(9):
        for k, g in fs.items():
            t = time.perf_counter(); g(); ts[k].append(time.perf_counter() - t)
    for k in fs: print(f"{k:28} {1e3*statistics.median(ts[k]):7.1f} ms", flush=True)
