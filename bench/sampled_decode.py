"""Sampled decode against greedy decode, time per token, with today's `Sampling` and the sort-free prototype.

Run: python bench/sampled_decode.py [--config paligemma-bench-small] [--batch 1 8] [--new-tokens 16] [--repeats 3]

Today's `Sampler` (`Sampler.generate_tokens(strategy=...)`), random weights, 224 px; the prototype's `Sampling`
(`bench/sampling_prototype.py`, a subclass of today's) goes through it unchanged. Decode time per token =
(time for N tokens - time for 1) / (N - 1), medians of interleaved repeats; the ratio to greedy in the same run
is the figure to read. `top_p` takes the bounded candidates when the `bound` most likely tokens hold top_p of the
probability (the random model here: its logits have a standard deviation of about 20), the bisection path
(`nucleus_threshold`) when they do not (the same model with its tied table scaled by 0.01: near-uniform); both
are shown, with how often each model's rows fall in the bound.
"""
from __future__ import annotations
import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).parent))
import sampling_prototype as sp  # noqa: E402
from common import config_for, random_inputs  # noqa: E402
from paligemma import Sampler  # noqa: E402
from paligemma.model import PaliGemma  # noqa: E402
from paligemma.sampler import Greedy, Sampling  # noqa: E402


def strategies(with_today: bool):
    out = {"greedy": Greedy(), "prototype Sampling(1.0)": sp.Sampling(1.0),
           "prototype Sampling(1.0, top_k=40)": sp.Sampling(1.0, top_k=40),
           "prototype Sampling(1.0, top_p=0.9): bounded candidates": sp.Sampling(1.0, top_p=0.9),
           "prototype Sampling(1.0, top_p=0.9): bisection (flat logits)": ("flat", sp.Sampling(1.0, top_p=0.9))}
    if with_today: out["today Sampling(1.0) (full sort)"] = Sampling(1.0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paligemma-bench-small")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-today", action="store_true", help="skip today's full-sort sampling (slow at batch 8)")
    args = ap.parse_args()
    config = config_for(args.config)
    model = PaliGemma(config, rngs=nnx.Rngs(0))
    flat = PaliGemma(config, rngs=nnx.Rngs(0))  # same weights, the tied table x0.01: near-uniform next tokens
    flat.llm.embedder.input_embedding[...] = flat.llm.embedder.input_embedding[...] * 0.01
    samplers = {"random": Sampler(model), "flat": Sampler(flat)}
    N = args.new_tokens
    print(f"\nSampled against greedy decode, `{args.config}`, random weights, float32, {N} new tokens, "
          f"medians of {args.repeats} interleaved repeats\n")
    print("| batch | strategy | ms per token | x greedy |")
    print("|---|---|---|---|")
    for B in args.batch:
        images, tokens = random_inputs(config, B, 16)
        lengths = np.full((B,), 16, np.int32)
        runs = {}
        for name, s in strategies(not args.no_today).items():
            which, s = s if isinstance(s, tuple) else ("random", s)
            gen = lambda n, s=s, which=which: jax.block_until_ready(samplers[which].generate_tokens(
                images, tokens, lengths, n, strategy=s, eos_id=None).tokens)
            gen(1), gen(N)  # compile both lengths
            runs[name] = (gen, [], [])
        for _ in range(args.repeats):
            for name, (gen, t1, tn) in runs.items():
                t = time.perf_counter(); gen(1); t1.append(time.perf_counter() - t)
                t = time.perf_counter(); gen(N); tn.append(time.perf_counter() - t)
        for which, smp in samplers.items():  # how often top_p=0.9 finds the nucleus inside the bound
            logits = smp.generate_tokens(images, tokens, lengths, N, eos_id=None, return_logits=True).logits
            probs = jax.nn.softmax(logits.reshape(-1, logits.shape[-1]), axis=-1)
            inside = jax.lax.top_k(probs, sp.Sampling(1.0, top_p=0.9).bound)[0].sum(-1) >= 0.9
            print(f"| {B} | ({which} logits: the top {sp.Sampling().bound} tokens hold 0.9 of the probability "
                  f"in {float(inside.mean()):.0%} of rows x steps) | | |")
        per = {k: (statistics.median(tn) - statistics.median(t1)) / (N - 1) for k, (_, t1, tn) in runs.items()}
        for k, v in per.items():
            print(f"| {B} | {k} | {v * 1e3:.1f} | {v / per['greedy']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
