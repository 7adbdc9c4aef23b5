"""Sampled decode against greedy decode, time per token, through `Sampler` (issue 26: within 1.1x).

Run: python bench/sampled_decode.py [--config paligemma-bench-small] [--batch 1 8] [--new-tokens 16] [--repeats 3]
                                    [--with-sort]
     python bench/sampled_decode.py --per-call [--batch 8] [--repeats 15]

`Sampler.generate_tokens(strategy=...)`, random weights, float32, 224 px, a 16-token prompt, no EOS. Decode time
per token = (time for N tokens - time for 1) / (N - 1), medians of interleaved repeats; the ratio to greedy in the
same run is the figure to read. `Sampling`'s `top_p` alone draws by rejection (`nucleus_rejection`: a draw from the
whole row kept when it lies in the nucleus, `tries` rounds); with `tries=0` it takes its bounded candidates when
the `bound` most likely tokens hold top_p of the probability (the random model here: its logits have a standard
deviation of about 20), the bisection (`nucleus_threshold`) when they do not (the same model with its tied table
scaled by 0.01: near-uniform next tokens); all are shown, with how often each model's rows fall inside the bound. `--with-sort`
adds the implementation the library had before (an `argsort` of the vocabulary and `jax.random.categorical`),
as a `Strategy` subclass: slow at batch 8.

`--per-call`: `sample_logits` alone on float32[B, 257,152] logits (normal, standard deviation 20; and x 0.01,
near-uniform, for the bisection), each strategy compiled alone, interleaved rounds, medians; beside it
`jax.random.categorical` on the same logits (the Gumbel-max draw `draw` replaces).
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
from flax import nnx, struct

sys.path.insert(0, str(Path(__file__).parent))
from common import config_for, random_inputs  # noqa: E402
from paligemma import Sampler  # noqa: E402
from paligemma.model import PaliGemma  # noqa: E402
from paligemma.sampler import Greedy, Sampling  # noqa: E402


@struct.dataclass
class SortedSampling(Sampling):
    "The previous `Sampling.choose`: a full sort of every row, then `jax.random.categorical`."

    def choose(self, logits, key):
        scaled = logits / self.temperature
        if self.top_k is not None:
            candidates, ids = jax.lax.top_k(scaled, self.top_k)
        else:
            ids = jnp.argsort(-scaled, axis=-1)
            candidates = jnp.take_along_axis(scaled, ids, axis=-1)
        if self.top_p is not None:
            probs = jax.nn.softmax(candidates, axis=-1)
            candidates = jnp.where(jnp.cumsum(probs, axis=-1) - probs < self.top_p, candidates, -jnp.inf)
        choice = jax.random.categorical(key, candidates, axis=-1)
        return jnp.take_along_axis(ids, choice[:, None], axis=-1)[:, 0]


def strategies(with_sort: bool) -> dict:
    "name -> (which model's logits, strategy)."
    out = {"greedy": ("random", Greedy()), "Sampling(1.0)": ("random", Sampling(1.0)),
           "Sampling(1.0, top_k=40)": ("random", Sampling(1.0, top_k=40)),
           "Sampling(1.0, top_p=0.9): rejection": ("random", Sampling(1.0, top_p=0.9)),
           "Sampling(1.0, top_p=0.9, tries=0): bounded candidates": ("random", Sampling(1.0, top_p=0.9, tries=0)),
           "greedy (flat logits)": ("flat", Greedy()),
           "Sampling(1.0, top_p=0.9): rejection (flat logits)": ("flat", Sampling(1.0, top_p=0.9)),
           "Sampling(1.0, top_p=0.9, tries=0): bisection (flat logits)": ("flat", Sampling(1.0, top_p=0.9, tries=0))}
    if with_sort: out["previous Sampling(1.0) (full sort)"] = ("random", SortedSampling(1.0))
    return out


def per_call(batches, repeats, with_sort):
    "The table of `--per-call`: ms per `sample_logits` call."
    from paligemma.sampler import sample_logits
    print(f"\n`sample_logits` per call, float32[B, 257,152] logits, medians of {repeats} interleaved rounds\n")
    print("| batch | strategy | ms per call |")
    print("|---|---|---|")
    for B in batches:
        x = jax.random.normal(jax.random.key(0), (B, 257_152)) * 20
        cases = {name: (x * 0.01 if which == "flat" else x, s) for name, (which, s) in strategies(with_sort).items()}
        fns = {name: (jax.jit(lambda l, k, s=s: sample_logits(l, k, s)), l) for name, (l, s) in cases.items()}
        fns["jax.random.categorical (for comparison)"] = (jax.jit(lambda l, k: jax.random.categorical(k, l)), x)
        key = jax.random.key(1)
        for f, l in fns.values(): jax.block_until_ready(f(l, key))
        times = {name: [] for name in fns}
        for _ in range(repeats):
            for name, (f, l) in fns.items():
                t = time.perf_counter(); jax.block_until_ready(f(l, key)); times[name].append(time.perf_counter() - t)
        for name, ts in times.items(): print(f"| {B} | {name} | {statistics.median(ts) * 1e3:.1f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paligemma-bench-small")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--with-sort", action="store_true", help="also the previous full-sort sampling (slow)")
    ap.add_argument("--per-call", action="store_true", help="time `sample_logits` alone, not whole generations")
    args = ap.parse_args()
    if args.per_call: return per_call(args.batch, args.repeats, args.with_sort)
    config = config_for(args.config)
    model = PaliGemma(config, rngs=nnx.Rngs(0))
    flat = PaliGemma(config, rngs=nnx.Rngs(0))  # same weights, the tied table x0.01: near-uniform next tokens
    flat.llm.embedder.input_embedding[...] = flat.llm.embedder.input_embedding[...] * 0.01
    samplers = {"random": Sampler(model), "flat": Sampler(flat)}
    N = args.new_tokens
    print(f"\nSampled against greedy decode, `{args.config}`, random weights, float32, {N} new tokens, "
          f"medians of {args.repeats} interleaved repeats\n")
    print("| batch | strategy | ms per token | x greedy (same logits) |")
    print("|---|---|---|---|")
    for B in args.batch:
        images, tokens = random_inputs(config, B, 16)
        lengths = np.full((B,), 16, np.int32)
        runs = {}
        for name, (which, s) in strategies(args.with_sort).items():
            gen = lambda n, s=s, which=which: jax.block_until_ready(samplers[which].generate_tokens(
                images, tokens, lengths, n, strategy=s, eos_id=None).tokens)
            gen(1), gen(N)  # compile both lengths
            runs[name] = (which, gen, [], [])
        for _ in range(args.repeats):
            for name, (_, gen, t1, tn) in runs.items():
                t = time.perf_counter(); gen(1); t1.append(time.perf_counter() - t)
                t = time.perf_counter(); gen(N); tn.append(time.perf_counter() - t)
        for which, smp in samplers.items():  # how often top_p=0.9 finds the nucleus inside the bound
            logits = smp.generate_tokens(images, tokens, lengths, N, eos_id=None, return_logits=True).logits
            probs = jax.nn.softmax(logits.reshape(-1, logits.shape[-1]), axis=-1)
            inside = jax.lax.top_k(probs, Sampling().bound)[0].sum(-1) >= 0.9
            print(f"| {B} | ({which} logits: the top {Sampling().bound} tokens hold 0.9 of the probability "
                  f"in {float(inside.mean()):.0%} of rows x steps) | | |")
        per = {k: (statistics.median(tn) - statistics.median(t1)) / (N - 1) for k, (_, _, t1, tn) in runs.items()}
        greedy = {"random": per["greedy"], "flat": per["greedy (flat logits)"]}
        for k, v in per.items():
            print(f"| {B} | {k} | {v * 1e3:.1f} | {v / greedy[runs[k][0]]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
