"""Where a batched decode step spends its time: each part of it compiled alone, its bytes, and its time.

Run: python bench/decode_parts.py [--config paligemma-bench-small] [--batch 8] [--repeats 7] [--new-tokens 16]

The step of `Sampler` (`paligemma/sampler.py`: `extend` + `sample_logits` in a `while_loop`) at 224 px (256 image
tokens + a 16-token prompt + `--new-tokens`), random weights, float32, the decoder's default layout. Each probe is
jitted alone; all are timed in one process, interleaved (one call of each per round, medians over rounds), so
the ratios hold even on a shared machine. For each: XLA's `bytes accessed`, the bytes its optimized HLO moves
(`bench/hlo_bytes.py`), the time, and the time reading those bytes once at the measured copy bandwidth would take.
The floor of a whole step is the larger of (weights + cache) / copy bandwidth and 2·batch·params / the measured
float32 matmul rate.
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
import decode_prototype as proto  # noqa: E402
import hlo_bytes  # noqa: E402
import sampling_prototype as sp  # noqa: E402
from common import config_for, copy_bandwidth  # noqa: E402
from paligemma.gemma import cache as today  # noqa: E402
from paligemma.gemma.transformer import Transformer  # noqa: E402
from paligemma.sampler import Greedy, Sampling, sample_logits  # noqa: E402


def matmul_rate(n: int = 2048) -> float:
    "float32 FLOP/s of an n x n x n matmul under XLA."
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    times = []
    for _ in range(5):
        t = time.perf_counter(); f(a).block_until_ready(); times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times)


class Probe:
    "A jitted function, its compiled bytes, and a runner that threads a donated cache from call to call."
    def __init__(self, name, fn, args, donate=None, floor_bytes=None):
        self.name, self.times, self.floor_bytes = name, [], floor_bytes
        jitted = jax.jit(fn, donate_argnums=() if donate is None else donate)
        compiled = jitted.lower(*args).compile()
        self.cost = compiled.cost_analysis()["bytes accessed"]
        self.moved = hlo_bytes.walk(compiled.as_text())[0]
        self.fn, self.args, self.donate = compiled, list(args), donate

    def __call__(self):
        t = time.perf_counter()
        out = jax.block_until_ready(self.fn(*self.args))
        self.times.append(time.perf_counter() - t)
        if self.donate is not None: self.args[self.donate] = out[1]  # the cache it returned, donated next time

    @property
    def ms(self): return 1e3 * statistics.median(self.times)


def probes(llm, config, batch, new_tokens):
    "The probes of one decode step of the decoder `llm` of a PaliGemma `config` at `batch`, cache as `Sampler` sizes it."
    graphdef, state = nnx.split(llm)
    P, L, N = config.num_image_tokens, 16, new_tokens
    slots = P + L + N - 1
    merge = lambda st: nnx.merge(graphdef, st)
    D, V = config.llm.width, config.llm.vocab_size
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(3, 1000, (batch,)), jnp.int32)
    x1 = jnp.asarray(rng.normal(size=(batch, 1, D)), jnp.float32)
    logits = jnp.asarray(rng.normal(size=(batch, V)) * 20, jnp.float32)  # as peaked as the random model's
    flat = logits / 100  # near-uniform: the nucleus of top_p=0.9 holds most of the vocabulary
    key = jax.random.key(0)

    def filled(cache):  # as after a prefill of P + L tokens
        return cache.replace(index=jnp.asarray(P + L, jnp.int32), positions=jnp.full((batch,), P + L, jnp.int32),
                             key_mask=jnp.arange(slots)[None].repeat(batch, 0) < P + L)

    c_today = lambda: filled(today.KVCache.create(config.llm, batch, slots))  # one per probe: each is donated
    c_proto = lambda: filled(proto.Cache.create(config.llm, batch, slots))
    weights = sum(a.nbytes for a in jax.tree.leaves(state))
    table = llm.embedder.input_embedding[...].nbytes
    kv = c_today().nbytes

    def step_today(st, t, c, key):  # the while_loop body's work: extend, then pick and score the next token
        logits, c = today.extend(merge(st), t, c)
        return sample_logits(logits, key, Greedy()), c

    def step_proto(st, t, c, key):
        logits, c = proto.extend(merge(st), t, c)
        return sp.sample_logits(logits, key, Greedy()), c

    def blocks(st, t, c):  # the decoder without the embedding lookup and the logits
        llm = merge(st)
        x = llm.embed(t[:, None])
        mask = c.key_mask[:, None, :]
        pre, k, v = proto.encode(llm, x, c.positions[:, None], mask, None, c.k, c.v, c.index)
        return pre, c.replace(k=k, v=v)

    yield Probe("step: extend + Greedy, today's cache", step_today, (state, tokens, c_today(), key), donate=2,
                floor_bytes=weights + kv)
    yield Probe("step: extend + Greedy, prototype cache", step_proto, (state, tokens, c_proto(), key), donate=2,
                floor_bytes=weights + kv)
    yield Probe("  embedding lookup (8 rows of the table)", lambda st, t: merge(st).embed(t[:, None]), (state, tokens),
                floor_bytes=batch * D * 4)
    yield Probe("  blocks + final norm (prototype cache)", blocks, (state, tokens, c_proto()), donate=2,
                floor_bytes=weights - table + kv)
    yield Probe("  logits: einsum BTD,VD->BTV (today)", lambda st, x: merge(st).logits(x), (state, x1),
                floor_bytes=table)
    emb = llm.embedder.input_embedding[...]
    yield Probe("  logits: einsum VD,BTD->BTV (table as lhs)", lambda e, x: jnp.einsum("VD,BTD->BTV", e, x),
                (emb, x1), floor_bytes=table)
    yield Probe("  logits: dot_general [V,D]x[B,D] -> [V,B], then .T", lambda e, x: jax.lax.dot_general(
        e, x[:, 0], (((1,), (1,)), ((), ()))).T, (emb, x1), floor_bytes=table)
    layer = llm.layers[0] if not config.llm.stacked else None
    if layer is not None:  # one block's matmuls alone, as the block runs them (`stacked_matmul` for q, kv, gating)
        from paligemma.gemma.layers import stacked_matmul
        a = layer.attn
        x2 = jnp.asarray(rng.normal(size=(batch, D)), jnp.float32)
        for name, w in (("q", a.q_einsum.w[...]), ("kv", a.kv_einsum.w[...].reshape(-1, D, config.llm.head_dim)),
                        ("gating", layer.mlp.gating_einsum.w[...])):
            yield Probe(f"  layer 0 {name} [{batch}, {D}] x {list(w.shape)}", stacked_matmul, (x2, w), floor_bytes=w.nbytes)
        wo = a.attn_vec_einsum.w[...].reshape(-1, D)
        yield Probe(f"  layer 0 attn_vec [{batch}, {wo.shape[0]}] x {list(wo.shape)}", jnp.matmul,
                    (jnp.ones((batch, wo.shape[0])), wo), floor_bytes=wo.nbytes)
        wl = layer.mlp.linear.w[...]
        yield Probe(f"  layer 0 linear [{batch}, {wl.shape[0]}] x {list(wl.shape)}", jnp.matmul,
                    (jnp.ones((batch, wl.shape[0])), wl), floor_bytes=wl.nbytes)
    yield Probe("  Greedy.choose [B, V]", lambda l: Greedy().choose(l, None), (logits,), floor_bytes=logits.nbytes)
    yield Probe("  jnp.argmax [B, V]", lambda l: jnp.argmax(l, -1), (logits,), floor_bytes=logits.nbytes)
    yield Probe("  lax.top_k(logits, 1)", lambda l: jax.lax.top_k(l, 1)[1], (logits,), floor_bytes=logits.nbytes)
    yield Probe("  sample_logits(Greedy) (choose + log-probability)", lambda l, k: sample_logits(l, k, Greedy()),
                (logits, key), floor_bytes=logits.nbytes)
    yield Probe("  sample_logits(Sampling(1.0)) today (full sort)", lambda l, k: sample_logits(l, k, Sampling(1.0)),
                (logits, key), floor_bytes=logits.nbytes)
    yield Probe("  sample_logits(Sampling(1.0, top_p=0.9)) today", lambda l, k: sample_logits(
        l, k, Sampling(1.0, top_p=0.9)), (logits, key), floor_bytes=logits.nbytes)
    yield Probe("  prototype sample_logits(Sampling(1.0))", lambda l, k: sp.sample_logits(l, k, sp.Sampling(1.0)),
                (logits, key), floor_bytes=logits.nbytes)
    yield Probe("  prototype sample_logits(Sampling(1.0, top_p=0.9)), bounded candidates", lambda l, k: sp.sample_logits(
        l, k, sp.Sampling(1.0, top_p=0.9)), (logits, key), floor_bytes=logits.nbytes)
    yield Probe("  prototype sample_logits(Sampling(1.0, top_p=0.9)), bisection (flat logits)", lambda l, k:
                sp.sample_logits(l, k, sp.Sampling(1.0, top_p=0.9)), (flat, key), floor_bytes=logits.nbytes)
    yield Probe("  prototype sample_logits(Sampling(1.0, top_k=64))", lambda l, k: sp.sample_logits(
        l, k, sp.Sampling(1.0, top_k=64)), (logits, key), floor_bytes=logits.nbytes)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paligemma-bench-small")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--new-tokens", type=int, default=32)
    args = ap.parse_args()
    config = config_for(args.config)
    llm = Transformer(config.llm, rngs=nnx.Rngs(0))
    ps = list(probes(llm, config, args.batch, args.new_tokens))
    bw, rate = copy_bandwidth(), matmul_rate()
    for _ in range(args.repeats):
        for p in ps: p()
    bw2, rate2 = copy_bandwidth(), matmul_rate()
    bw, rate = (bw + bw2) / 2, (rate + rate2) / 2
    params = sum(a.size for a in jax.tree.leaves(nnx.state(llm)))
    flops = 2 * args.batch * params
    print(f"\nDecode step parts, `{args.config}` decoder ({config.llm.stacked and 'stacked' or 'list'} layout), "
          f"batch {args.batch}, {config.num_image_tokens} image + 16 prompt + {args.new_tokens} new tokens of cache, "
          f"float32; copy bandwidth {bw / 1e9:.1f} GB/s, float32 matmul {rate / 1e9:.0f} GFLOP/s (both measured "
          f"before and after, averaged); medians of {args.repeats} interleaved rounds\n")
    print("| part | XLA bytes accessed (MB) | HLO bytes moved (MB) | must read (MB) | time (ms) "
          "| must-read bytes at copy bandwidth (ms) | x that |")
    print("|---|---|---|---|---|---|---|")
    for p in ps:
        floor_ms = 1e3 * p.floor_bytes / bw
        print(f"| {p.name.strip()} | {p.cost / 1e6:.1f} | {p.moved / 1e6:.1f} | {p.floor_bytes / 1e6:.1f} | "
              f"{p.ms:.2f} | {floor_ms:.2f} | {p.ms / floor_ms:.1f}x |")
    print(f"\nStep floor: max(weights + cache {ps[0].floor_bytes / 1e9:.3f} GB / {bw / 1e9:.1f} GB/s = "
          f"{1e3 * ps[0].floor_bytes / bw:.1f} ms, 2·batch·params {flops / 1e9:.2f} GFLOP / {rate / 1e9:.0f} GFLOP/s "
          f"= {1e3 * flops / rate:.1f} ms)")


if __name__ == "__main__":
    main()
