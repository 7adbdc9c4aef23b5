"""Bytes one decode step moves, against reading the weights and the KV cache once: today's cache and the prototype's.

Run: python bench/decode_bytes.py [--slots 512 2048 8192] [--batch 8] [--depth 4] [--vocab 256] [--moves]
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


def measure(config, batch, slots, impl):
    compiled, weights, kv, sizes = compile_extend(config, batch, slots, impl)
    moved, moves, notes = hlo_bytes.walk(compiled.as_text())
    weight_copies = sum(2 * m.nbytes * m.times for m in moves if m.kind in ("slice", "dynamic-slice")
                        and m.nbytes in sizes)  # each is written, then read again by its matmul
    return dict(weights=weights, kv=kv, cost=compiled.cost_analysis()["bytes accessed"], moved=moved,
                weight_copies=weight_copies, moves=moves, notes=notes,
                temp=compiled.memory_analysis().temp_size_in_bytes)


IMPLS = {"today": "today's `KVCache` `[L, B, S, K, H]`",
         "proto": "prototype: a `[B, K, S, H]` buffer per layer, layers looped in Python",
         "scanned": "prototype's alternative: `[L, B, K, S, H]` in the scan's carry (stacked only)"}


def table(args):
    print(f"\nDecode-step bytes, Gemma 2 2B width, {args.depth} layers, batch {args.batch}, vocab {args.vocab}, "
          f"float32, XLA:CPU (jax {jax.__version__})\n")
    print("| layout | cache | slots | weights (GB) | cache (GB) | cost / (W+C) | moved / (W+C) | weight copies (GB) "
          "| moved without weight copies / (W+C) | XLA temp (GB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    details = []
    for stacked in (True, False):
        config = GemmaConfig.gemma2_2b(depth=args.depth, vocab_size=args.vocab, stack_layers=stacked)
        for impl in ("today", "proto", "scanned"):
            if impl == "scanned" and not stacked: continue
            for slots in args.slots:
                r = measure(config, args.batch, slots, impl)
                floor = r["weights"] + r["kv"]
                print(f"| {'stacked' if stacked else 'list'} | {impl} | {slots} | {r['weights'] / 1e9:.3f} | "
                      f"{r['kv'] / 1e9:.3f} | {r['cost'] / floor:.2f}x | {r['moved'] / floor:.2f}x | "
                      f"{r['weight_copies'] / 1e9:.2f} | {(r['moved'] - r['weight_copies']) / floor:.2f}x | "
                      f"{r['temp'] / 1e9:.2f} |", flush=True)
                if args.moves and slots == max(args.slots):
                    details.append((f"{'stacked' if stacked else 'list'}, {IMPLS[impl]}, {slots} slots",
                                    hlo_bytes.report(r["moves"]), r["notes"]))
    for title, rows, notes in details:
        print(f"\nCopies in the optimized HLO: {title} (size, times per step)")
        print("\n".join(f"    {row}" for row in rows) or "    none of 1 MB or more", *notes, sep="\n")


def loop_check(args):
    "The generation shape: prefill + greedy extends in a `while_loop`; what its body copies, whether it updates in place."
    slots = min(args.slots)
    print(f"\nGeneration loop (prototype, prefill of 16 + {slots - 17} steps in one while_loop, cache donated):")
    for stacked, scanned in ((False, False), (True, False), (True, True)):
        config = GemmaConfig.gemma2_2b(depth=args.depth, vocab_size=args.vocab, stack_layers=stacked)
        graphdef, state, _ = abstract_model(config)
        cache = jax.eval_shape(lambda: proto.Cache.create(config, args.batch, slots, stacked=scanned))
        B, T = args.batch, 16
        sds = jax.ShapeDtypeStruct
        fn = lambda st, x, p, m, last, c: proto.greedy_loop(nnx.merge(graphdef, st), x, p, m, last, c, slots - T - 1)
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
        print(f"- {'stacked' if stacked else 'list'}{', scanned cache' if scanned else ''}: in the loop body, "
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
    ap.add_argument("--moves", action="store_true", help="list the copies found in each optimized HLO")
    ap.add_argument("--loop", action="store_true", help="check the generation while_loop for copies")
    args = ap.parse_args()
    table(args)
    if args.loop: loop_check(args)


if __name__ == "__main__":
    main()
