"""Bytes one decode step moves, against reading the weights and the KV cache once: the library's cache (and the prototype's).

Run: python bench/decode_bytes.py [--slots 512 2048 8192] [--batch 8] [--depth 4] [--vocab 256] [--kv-heads 4] [--moves]
     python bench/decode_bytes.py --loop        # also: the generation while_loop, cache donated, copies in its body

Everything is compiled from abstract shapes (`nnx.eval_shape`, `jax.ShapeDtypeStruct`): nothing is allocated.
Decoder: Gemma 2 2B width (D 2304, F 9216, 8 query and 4 key-value heads of 256), `--depth` layers, float32.
The default vocabulary (256) leaves the tied 257k-row table out, as the issue's figures do; `--vocab 257152` puts
it in. For each layout (`GemmaConfig(stack_layers=True/False)`) and cache size it prints:
- `cost`: `compiled.cost_analysis()["bytes accessed"]` / (weights + cache). XLA counts a `while` body once (the
  stacked layout's scan: one layer of L) and a gather's whole table, so it under- and over-counts;
- `moved`: the same ratio from walking the optimized HLO (`bench/hlo_bytes.py`): each executed instruction's
  operands and result, `while` bodies times their trip count, slices and in-place updates at their real size;
- `weight copies`: the part of `moved` that copies weights (layers sliced out of stacked `[L, ...]` parameters,
  which XLA:CPU hands to its matmuls only as whole buffers);
- `a step of the generation loop`: the bytes one iteration of `library_loop` moves (prefill, then greedy extends
  in a `while_loop`, as `paligemma.sampler._generate` runs them: on CPU stacked weights are sliced once before the
  loop), from two trip counts compiled and differenced;
- `--impls proto scanned`: the same for the prototype (`decode_prototype.py`) and its scanned-cache alternative;
- with `--moves`, every copy, transpose, concatenation and materialised slice of 1 MB or more.
"""
from __future__ import annotations
import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

sys.path.insert(0, str(Path(__file__).parent))
import decode_prototype as proto  # noqa: E402
import hlo_bytes  # noqa: E402
from paligemma.gemma import cache as today  # noqa: E402
from paligemma.gemma.transformer import GemmaConfig, Transformer  # noqa: E402
from paligemma.nn import unstacked  # noqa: E402


def abstract_model(config: GemmaConfig):
    "(graphdef, abstract state, weight bytes) of a decoder with `config`, nothing allocated."
    graphdef, state = nnx.split(nnx.eval_shape(lambda: Transformer(config, rngs=nnx.Rngs(0))))
    return graphdef, state, sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(state))


def layer_weight_sizes(state) -> set[int]:
    "Bytes of one layer of each stacked `[L, ...]` parameter."
    return {a.size // a.shape[0] * a.dtype.itemsize for p, a in nnx.to_flat_state(state) if "layers" in map(str, p)
            and a.ndim >= 3}


def compile_extend(config: GemmaConfig, batch: int, slots: int, impl: str):
    "(compiled extend with the cache donated, weight bytes, cache bytes, per-layer weight sizes)."
    graphdef, state, weights = abstract_model(config)
    if impl == "today":
        cache = jax.eval_shape(lambda: today.KVCache.create(config, batch, slots))
        fn = lambda st, t, c: today.extend(nnx.merge(graphdef, st), t, c)
    else:
        cache = jax.eval_shape(lambda: proto.Cache.create(config, batch, slots, stacked=impl == "scanned"))
        fn = lambda st, t, c: proto.extend(nnx.merge(graphdef, st), t, c)
    kv = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves((cache.k, cache.v)))
    compiled = jax.jit(fn, donate_argnums=2).lower(state, jax.ShapeDtypeStruct((batch,), jnp.int32), cache).compile()
    return compiled, weights, kv, layer_weight_sizes(state)


def loop_step_bytes(config: GemmaConfig, batch: int, slots: int, steps=(100, 200)) -> float:
    "Bytes one step of the generation loop (`library_loop`) moves: two trip counts compiled, their difference."
    graphdef, state, _ = abstract_model(config)
    cache = jax.eval_shape(lambda: today.KVCache.create(config, batch, slots))
    sds, T = jax.ShapeDtypeStruct, 16
    moved = []
    for n in steps:
        fn = lambda st, x, p, m, last, c, n=n: library_loop(nnx.merge(graphdef, st), x, p, m, last, c, n)
        compiled = jax.jit(fn, donate_argnums=5).lower(
            state, sds((batch, T, config.width), jnp.float32), sds((batch, T), jnp.int32), sds((batch, T, T), bool),
            sds((batch,), jnp.int32), cache).compile()
        moved.append(hlo_bytes.walk(compiled.as_text())[0])
    return (moved[1] - moved[0]) / (steps[1] - steps[0])


def measure(config, batch, slots, impl):
    compiled, weights, kv, sizes = compile_extend(config, batch, slots, impl)
    moved, moves, notes = hlo_bytes.walk(compiled.as_text())
    weight_copies = sum(2 * m.nbytes * m.times for m in moves if m.kind in ("slice", "dynamic-slice")
                        and m.nbytes in sizes)  # each is written, then read again by its matmul
    return dict(weights=weights, kv=kv, cost=compiled.cost_analysis()["bytes accessed"], moved=moved,
                weight_copies=weight_copies, moves=moves, notes=notes,
                temp=compiled.memory_analysis().temp_size_in_bytes)


IMPLS = {"today": "the library's `KVCache` (a `[B, K, S, H]` buffer per layer)",
         "proto": "prototype: a `[B, K, S, H]` buffer per layer, layers looped in Python",
         "scanned": "prototype's alternative: `[L, B, K, S, H]` in the scan's carry (stacked only)"}


def table(args):
    print(f"\nDecode-step bytes, Gemma 2 2B width, {args.depth} layers, {args.kv_heads} key/value heads, batch "
          f"{args.batch}, vocab {args.vocab}, float32, XLA:CPU (jax {jax.__version__})\n")
    print("| layout | cache | slots | weights (GB) | cache (GB) | cost / (W+C) | moved / (W+C) | weight copies (GB) "
          "| moved without weight copies / (W+C) | XLA temp (GB) | a step of the generation loop, moved / (W+C) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    details = []
    for stacked in (True, False):
        config = GemmaConfig.gemma2_2b(depth=args.depth, vocab_size=args.vocab, num_kv_heads=args.kv_heads,
                                            stack_layers=stacked)
        for impl in args.impls:
            if impl == "scanned" and not stacked: continue
            for slots in args.slots:
                r = measure(config, args.batch, slots, impl)
                floor = r["weights"] + r["kv"]
                in_loop = loop_step_bytes(config, args.batch, slots) / floor if impl == "today" else float("nan")
                print(f"| {'stacked' if stacked else 'list'} | {impl} | {slots} | {r['weights'] / 1e9:.3f} | "
                      f"{r['kv'] / 1e9:.3f} | {r['cost'] / floor:.2f}x | {r['moved'] / floor:.2f}x | "
                      f"{r['weight_copies'] / 1e9:.2f} | {(r['moved'] - r['weight_copies']) / floor:.2f}x | "
                      f"{r['temp'] / 1e9:.2f} | {in_loop:.2f}x |", flush=True)
                if args.moves and slots == max(args.slots):
                    details.append((f"{'stacked' if stacked else 'list'}, {IMPLS[impl]}, {slots} slots",
                                    hlo_bytes.report(r["moves"]), r["notes"]))
    for title, rows, notes in details:
        print(f"\nCopies in the optimized HLO: {title} (size, times per step)")
        print("\n".join(f"    {row}" for row in rows) or "    none of 1 MB or more", *notes, sep="\n")


def library_loop(llm, x, positions, mask, last, cache, steps: int):
    "`paligemma.sampler._generate`'s shape with the library's cache: prefill, then greedy extends in a `while_loop`."
    if jax.default_backend() == "cpu":  # as `_generate` does: stacked weights sliced once, not on every step
        llm.layers = nnx.List(unstacked(llm.layers))
    logits, cache = today.prefill(llm, x, positions, mask, last, cache)
    B = x.shape[0]
    tokens = jnp.zeros((B, steps + 1), jnp.int32).at[:, 0].set(jnp.argmax(logits, -1).astype(jnp.int32))

    def body(s):
        i, tokens, cache = s
        logits, cache = today.extend(llm, tokens[:, i], cache)
        return i + 1, tokens.at[:, i + 1].set(jnp.argmax(logits, -1).astype(jnp.int32)), cache

    _, tokens, cache = jax.lax.while_loop(lambda s: s[0] < steps, body, (jnp.int32(0), tokens, cache))
    return tokens, cache


def loop_check(args):
    "The generation shape: prefill + greedy extends in a `while_loop`; what its body copies, whether it updates in place."
    slots = min(args.slots)
    print(f"\nGeneration loop (prefill of 16 + {slots - 17} steps in one while_loop, cache donated):")
    for stacked, impl in ((False, "today"), (True, "today"), (False, "proto"), (True, "proto"), (True, "scanned")):
        if impl not in args.impls: continue
        config = GemmaConfig.gemma2_2b(depth=args.depth, vocab_size=args.vocab, num_kv_heads=args.kv_heads,
                                            stack_layers=stacked)
        graphdef, state, _ = abstract_model(config)
        B, T = args.batch, 16
        sds = jax.ShapeDtypeStruct
        if impl == "today":
            cache = jax.eval_shape(lambda: today.KVCache.create(config, args.batch, slots))
            fn = lambda st, x, p, m, last, c: library_loop(nnx.merge(graphdef, st), x, p, m, last, c, slots - T - 1)
        else:
            cache = jax.eval_shape(lambda: proto.Cache.create(config, args.batch, slots, stacked=impl == "scanned"))
            fn = lambda st, x, p, m, last, c: proto.greedy_loop(nnx.merge(graphdef, st), x, p, m, last, c,
                                                                slots - T - 1)
        compiled = jax.jit(fn, donate_argnums=5).lower(
            state, sds((B, T, config.width), jnp.float32), sds((B, T), jnp.int32), sds((B, T, T), bool),
            sds((B,), jnp.int32), cache).compile()
        text = compiled.as_text()
        comps, entry = hlo_bytes.parse(text)
        bodies = {i.called("body") for c in comps.values() for i in c if i.opcode == "while"}
        layer = args.batch * config.num_kv_heads * slots * config.head_dim * 4
        moves = [m for m in hlo_bytes.walk(text)[1] if m.computation in bodies]
        cache_moves = [m for m in moves if m.nbytes in (layer, config.depth * layer)]
        weight_moves = [m for m in moves if m.nbytes in layer_weight_sizes(state)]
        dus = [i for b in bodies for i in comps[b] if i.opcode == "fusion" and i.nbytes in (layer, config.depth * layer)
               and hlo_bytes.root_op(comps, i) == "dynamic-update-slice"]
        mem = compiled.memory_analysis()
        print(f"- {'stacked' if stacked else 'list'}, {IMPLS[impl]}: in the loop body, "
              f"{len(cache_moves)} copies of cache buffers {[(m.kind, m.type) for m in cache_moves][:2]}, "
              f"{len(dus)} in-place cache updates (fusions rooted at dynamic-update-slice), {len(weight_moves)} "
              f"copies of weight slices; XLA temp {mem.temp_size_in_bytes / 1e6:.0f} MB (one layer's K or V: "
              f"{layer / 1e6:.0f} MB), donated {mem.alias_size_in_bytes / 1e6:.0f} MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=int, nargs="+", default=[512, 2048, 8192])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--kv-heads", type=int, default=4, help="key/value heads (Gemma 2 2B: 4; 1 as in PaliGemma 1)")
    ap.add_argument("--moves", action="store_true", help="list the copies found in each optimized HLO")
    ap.add_argument("--loop", action="store_true", help="check the generation while_loop for copies")
    ap.add_argument("--impls", nargs="+", default=["today"], choices=list(IMPLS),
                    help="caches to measure: the library's (today), the prototype's (proto, scanned)")
    args = ap.parse_args()
    table(args)
    if args.loop: loop_check(args)


if __name__ == "__main__":
    main()
