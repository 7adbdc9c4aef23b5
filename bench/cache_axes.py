"""A decode step with the KV cache as the library keeps it now, against the previous cache, in one process.

Run: python bench/cache_axes.py [--batch 1 8] [--repeats 15]

Now: each layer's buffers without their size-1 axes (`KVCache.create`) and `attend`'s one-query order (keys first,
logits `[B, K, S, G]`). Before (commit 1fa66a6): `[B, K, S, H]` buffers and `attend`'s general order, reproduced
here by `previous_attend` (that commit's code) and by the same cache reshaped to every axis. Both run the library's
`extend` + `sample_logits(Greedy)` on the same random weights and cache, list layout, float32, each as a jitted
step with its cache donated, timed interleaved (one call of each per round, medians). For each: the bytes its
optimized HLO moves (`bench/hlo_bytes.py`) over the weights' and the cache's bytes W + C, and the time.
Decoders (all 4 layers of width 512, vocabulary 257,152, a cache of 1,040 prefix + 15 slots, 448 px):
- `448, K=4`: issue 26's long-context decoder (Gemma 2, 8 query and 4 key/value heads of 128);
- `448, K=1`: PaliGemma 1's shape (Gemma 1, 8 query heads and one key/value head of 256);
- `224, K=1`: `paligemma-bench-small`'s decoder (6 layers, heads of 64, 256 image + 16 prompt + 15 slots).
"""
from __future__ import annotations
import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).parent))
import hlo_bytes  # noqa: E402
from common import config_for  # noqa: E402
import paligemma.gemma.layers as layers  # noqa: E402
from paligemma.gemma.cache import KVCache, extend  # noqa: E402
from paligemma.gemma.transformer import GemmaConfig, Transformer  # noqa: E402
from paligemma.nn import K_MASK, attend  # noqa: E402
from paligemma.sampler import Greedy, sample_logits  # noqa: E402


def previous_attend(q, k, v, mask, *, softcap=None):
    "`paligemma.nn.attend` as of commit 1fa66a6: one order, `[B, K, G, T, .]`, for every number of queries."
    B, T, N, H = q.shape
    K = k.shape[1]
    q = q.reshape(B, T, K, N // K, H).transpose(0, 2, 3, 1, 4)
    wide = jnp.promote_types(q.dtype, k.dtype)
    k, v = k.astype(wide), v.astype(wide)
    logits = jnp.einsum("BKGTH,BKSH->BKGTS", q, k, preferred_element_type=jnp.float32)
    if softcap is not None:
        logits = jnp.tanh(logits / softcap) * softcap
    if mask is not None:
        logits = jnp.where(mask[:, None, None, :, :], logits, K_MASK)
    weights = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum("BKGTS,BKSH->BKGTH", weights.astype(v.dtype), v)
    return out.transpose(0, 3, 1, 2, 4).reshape(B, T, N, H), weights.reshape(B, N, T, -1)


def decoders():
    "(name, decoder config, prefix slots) of the three decoders measured."
    wide = dict(width=512, depth=4, mlp_dim=2048, num_heads=8)
    yield "448, K=4", GemmaConfig.gemma2_2b(**wide, num_kv_heads=4, head_dim=128), 1040
    yield "448, K=1", GemmaConfig.gemma_2b(**wide, num_kv_heads=1, head_dim=256), 1040
    yield "224, K=1", config_for("paligemma-bench-small").llm, 272


def every_axis(cache: KVCache) -> KVCache:
    "The same cache with `[B, K, S, H]` buffers, as the library kept them before."
    k, v = zip(*(cache.layer(i) for i in range(len(cache.k))))
    return cache.replace(k=k, v=v)


class Step:
    "One decode step compiled for one cache form, with its HLO bytes, timed call by call (cache donated)."
    def __init__(self, graphdef, state, cache, tokens, previous: bool):
        def step(st, t, c, key):
            logits, c = extend(nnx.merge(graphdef, st), t, c)
            return sample_logits(logits, key, Greedy()), c
        layers.attend = previous_attend if previous else attend  # read when the step is traced, just below
        try:
            self.fn = jax.jit(step, donate_argnums=2).lower(state, tokens, cache, jax.random.key(0)).compile()
        finally:
            layers.attend = attend
        self.moved = hlo_bytes.walk(self.fn.as_text())[0]
        self.args, self.times = [state, tokens, cache, jax.random.key(0)], []

    def __call__(self):
        t = time.perf_counter()
        (tokens, _), cache = jax.block_until_ready(self.fn(*self.args))
        self.times.append(time.perf_counter() - t)
        self.args[2], self.tokens = cache, tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    print(f"\nDecode step, cache as now against the previous cache (list layout, float32, jax {jax.__version__}); "
          f"medians of {args.repeats} interleaved rounds\n")
    print("| decoder | batch | cache C (MB) | weights W (MB) | before: moved / (W + C) | now | "
          "before (ms) | now (ms) | speed-up | same tokens |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, config, prefix in decoders():
        config = config.replace(stack_layers=False)
        graphdef, state = nnx.split(Transformer(config, rngs=nnx.Rngs(0)))
        weights = sum(a.nbytes for a in jax.tree.leaves(state))
        for batch in args.batch:
            slots, rng = prefix + 15, np.random.default_rng(0)
            cache = KVCache.create(config, batch, slots)
            cache = cache.replace(k=tuple(jnp.asarray(rng.normal(size=a.shape), a.dtype) for a in cache.k),
                                  v=tuple(jnp.asarray(rng.normal(size=a.shape), a.dtype) for a in cache.v),
                                  key_mask=jnp.arange(slots)[None].repeat(batch, 0) < prefix,
                                  key_positions=jnp.broadcast_to(jnp.arange(slots, dtype=jnp.int32), (batch, slots)),
                                  positions=jnp.full((batch,), prefix, jnp.int32), index=jnp.asarray(prefix, jnp.int32))
            tokens = jnp.arange(batch, dtype=jnp.int32) + 5
            copy = lambda c: jax.tree.map(lambda a: jnp.array(a, copy=True), c)  # each step donates its own
            before = Step(graphdef, state, every_axis(copy(cache)), tokens, previous=True)
            now = Step(graphdef, state, copy(cache), tokens, previous=False)
            for _ in range(args.repeats):
                before(); now()
            same = bool(np.array_equal(np.asarray(before.tokens), np.asarray(now.tokens)))
            ms = lambda s: 1e3 * statistics.median(s.times)
            print(f"| {name} | {batch} | {cache.nbytes / 1e6:.1f} | {weights / 1e6:.0f} | "
                  f"{before.moved / (weights + cache.nbytes):.2f}x | {now.moved / (weights + cache.nbytes):.2f}x | "
                  f"{ms(before):.1f} | {ms(now):.1f} | {ms(before) / ms(now):.2f}x | {same} |", flush=True)


if __name__ == "__main__":
    main()
