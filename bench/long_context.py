"""Long context: 448 px (1,024 image tokens), a decoder with 4 key-value heads; our `Sampler` against transformers
and against the floor.

Run: python bench/long_context.py [--batch 1 8] [--new-tokens 16] [--repeats 3]

The config of issue 26: ViT 384 wide x 4 layers at 448 px (patch 14: 1,024 image tokens), a Gemma 2 decoder 512 wide
x 4 layers with 8 query and 4 key-value heads of 128, vocabulary 257,152; random weights in float32, the same in
both implementations (`bench/common.py`: `hf_model_for`, copied into ours as `bench/generate.py` does). Greedy, no
EOS, a 16-token prompt. Prefill = a generation of 1 token; decode time per step = (time for N tokens - time for 1)
/ (N - 1), medians of repeats alternating between the two implementations in one process (`bench/generate.py`'s
`measure`); transformers runs `generate` with its default attention.

The floor of a decode step is the larger of
- (decoder weights + KV cache) bytes / the copy bandwidth (numpy, 1 GiB), and
- 2 * batch * decoder parameters FLOPs / the float32 matmul rate (XLA, 2048^3),
both measured in this run. "XLA bytes" is `cost_analysis()["bytes accessed"]` of one `extend` (the decode step
without sampling) compiled with the cache donated, from abstract shapes.
"""
from __future__ import annotations
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).parent))
from common import copy_bandwidth, hf_model_for  # noqa: E402
from generate import Ours, Theirs, llm_param_bytes, measure, ours_from_hf_state, torch_to_numpy  # noqa: E402
from paligemma.gemma.cache import KVCache, extend  # noqa: E402
from paligemma.gemma.transformer import GemmaConfig  # noqa: E402
from paligemma.model import PaliGemmaConfig  # noqa: E402
from paligemma.sampler import bucket_length, cache_length  # noqa: E402
from paligemma.vit.model import ViTConfig  # noqa: E402


PROMPT = 16  # text tokens after the image tokens, as `measure` makes them


def long_config() -> PaliGemmaConfig:
    "Issue 26's 448 px config: ViT 384 x 4, Gemma 2 512 x 4 with 8 query and 4 key-value heads of 128."
    return PaliGemmaConfig(ViTConfig(width=384, depth=4, mlp_dim=1536, num_heads=6),
                           GemmaConfig.gemma2_2b(width=512, depth=4, mlp_dim=2048, num_heads=8, num_kv_heads=4,
                                                 head_dim=128), 448)


def matmul_rate(n: int = 2048) -> float:
    "float32 FLOP/s of an n x n x n matmul under XLA (median of 5)."
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    times = []
    for _ in range(5):
        t = time.perf_counter(); f(a).block_until_ready(); times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times)


def step_bytes(model, batch: int, slots: int) -> tuple[float, int]:
    "(XLA bytes accessed by one `extend` with the cache donated, the cache's bytes), from abstract shapes."
    graphdef, state = nnx.split(model.llm)
    dtype = model.llm.embedder.dtype  # the sampler's default cache dtype
    cache = jax.eval_shape(lambda: KVCache.create(model.config.llm, batch, slots, dtype))
    fn = lambda st, t, c: extend(nnx.merge(graphdef, st), t, c)
    compiled = jax.jit(fn, donate_argnums=2).lower(state, jax.ShapeDtypeStruct((batch,), jnp.int32), cache).compile()
    return compiled.cost_analysis()["bytes accessed"], sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(cache))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.new_tokens < 2: sys.exit("--new-tokens must be >= 2 (decode time is the difference from 1 token)")
    config = long_config()
    hf = hf_model_for(config, dtype="float32")
    state = {k: torch_to_numpy(v) for k, v in hf.state_dict().items()}
    ours, theirs = Ours(ours_from_hf_state(config, state, "float32")), Theirs(hf)
    del state
    results = {b: measure([ours, theirs], config, b, args.new_tokens, args.repeats) for b in args.batch}
    bw, rate = copy_bandwidth(), matmul_rate()
    weights = llm_param_bytes(config, "float32")
    params = weights // 4
    slots = cache_length(config, bucket_length(PROMPT), args.new_tokens)
    print(f"\nLong context, 448 px: {config.num_image_tokens} image tokens + {PROMPT}-token prompt, "
          f"{args.new_tokens} new tokens ({slots} cache slots); decoder {weights / 1e9:.3f} GB of float32 weights; "
          f"{os.cpu_count()} CPU cores; copy bandwidth {bw / 1e9:.1f} GB/s, float32 matmul {rate / 1e9:.0f} GFLOP/s "
          f"(measured in this run); medians of {args.repeats} repeats\n")
    print("| batch | ours prefill (ms) | transformers prefill (ms) | prefill speed-up | ours ms/step | "
          "transformers ms/step | decode speed-up | cache (MB) | floor ms/step (bytes / FLOPs) | ours x floor | "
          "XLA bytes / (weights + cache) | same tokens |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for b in args.batch:
        o, h = results[b]["ours"], results[b]["transformers"]
        cost, cache = step_bytes(ours.sampler.model, b, slots)
        by_bytes, by_flops = (weights + cache) / bw, 2 * b * params / rate
        floor = max(by_bytes, by_flops)
        same = np.mean(np.asarray(o["tokens"]) == np.asarray(h["tokens"]))
        print(f"| {b} | {o['prefill'] * 1e3:.0f} | {h['prefill'] * 1e3:.0f} | {h['prefill'] / o['prefill']:.2f}x | "
              f"{o['step'] * 1e3:.1f} | {h['step'] * 1e3:.1f} | {h['step'] / o['step']:.2f}x | {cache / 1e6:.1f} | "
              f"{floor * 1e3:.1f} ({by_bytes * 1e3:.1f} / {by_flops * 1e3:.1f}) | {o['step'] / floor:.2f}x | "
              f"{cost / 1e9:.3f} / {(weights + cache) / 1e9:.3f} GB = {cost / (weights + cache):.2f}x | "
              f"{same:.0%} |", flush=True)


if __name__ == "__main__":
    main()
