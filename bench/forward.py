"""Forward pass: ours (JAX/Flax NNX) beside transformers (PyTorch) on the same random weights.

Run: python bench/forward.py [--config paligemma-bench-small] [--batch 1 8] [--text-len 32]
Each implementation runs in its own subprocess (so peak memory is its own); weights come from the same seed.
Prints a markdown table for bench/RESULTS.md.
"""
from __future__ import annotations
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def run_ours(config_name, batches, text_len):
    import gc
    import jax, jax.numpy as jnp
    from flax import nnx
    from common import config_for, hf_model_for, our_model_from, median_time, random_inputs, rss_bytes, reset_peak_rss, peak_rss_bytes
    config = config_for(config_name)
    hf = hf_model_for(config)
    model = our_model_from(hf, config)
    del hf; gc.collect()
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, images, tokens):
        return nnx.merge(graphdef, state)(images, tokens)

    out = {}
    for batch in batches:
        images, tokens = (jnp.asarray(a) for a in random_inputs(config, batch, text_len))
        t0 = __import__("time").perf_counter()
        compiled = forward.lower(state, images, tokens).compile()
        compile_s = __import__("time").perf_counter() - t0
        compiled(state, images, tokens).block_until_ready()
        before = rss_bytes(); reset_peak_rss()
        seconds = median_time(lambda: compiled(state, images, tokens).block_until_ready())
        mem = compiled.memory_analysis()
        out[batch] = dict(seconds=seconds, compile_s=compile_s, peak_extra=peak_rss_bytes() - before, rss=before,
                          xla_temp=getattr(mem, "temp_size_in_bytes", None))
    return out


def run_hf(config_name, batches, text_len):
    import torch
    from common import config_for, hf_model_for, median_time, random_inputs, rss_bytes, reset_peak_rss, peak_rss_bytes
    torch.set_num_threads(os.cpu_count())
    config = config_for(config_name)
    model = hf_model_for(config)
    P = config.num_image_tokens
    out = {}
    for batch in batches:
        images, tokens = random_inputs(config, batch, text_len)
        ids = torch.tensor(__import__("numpy").concatenate(
            [__import__("numpy").full((batch, P), model.config.image_token_id), tokens], 1), dtype=torch.long)
        pixels = torch.tensor(images.transpose(0, 3, 1, 2))
        tt = torch.zeros_like(ids)

        def call():
            with torch.no_grad():
                return model(input_ids=ids, pixel_values=pixels, token_type_ids=tt, use_cache=False).logits
        call()
        before = rss_bytes(); reset_peak_rss()
        seconds = median_time(call)
        out[batch] = dict(seconds=seconds, compile_s=0.0, peak_extra=peak_rss_bytes() - before, rss=before)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paligemma-bench-small")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--text-len", type=int, default=32)
    ap.add_argument("--side", choices=["ours", "hf"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        fn = run_ours if args.side == "ours" else run_hf
        print(json.dumps(fn(args.config, args.batch, args.text_len)))
        return
    results = {}
    for side in ("ours", "hf"):
        cmd = [sys.executable, __file__, "--side", side, "--config", args.config, "--text-len", str(args.text_len),
               "--batch", *map(str, args.batch)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode: sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
        results[side] = {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    mb = 2 ** 20
    print(f"\nForward pass, `{args.config}`, {args.text_len} text tokens, float32, {os.cpu_count()} CPU cores\n")
    print("| batch | ours (ms) | transformers (ms) | speed-up | our compile (s) | our peak extra RSS (MB) | "
          "transformers peak extra RSS (MB) | memory ratio | our XLA temp (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b in args.batch:
        o, h = results["ours"][b], results["hf"][b]
        print(f"| {b} | {o['seconds']*1e3:.1f} | {h['seconds']*1e3:.1f} | {h['seconds']/o['seconds']:.2f}x | "
              f"{o['compile_s']:.2f} | {o['peak_extra']/mb:.0f} | {h['peak_extra']/mb:.0f} | "
              f"{o['peak_extra']/max(h['peak_extra'],1):.2f} | {(o['xla_temp'] or 0)/mb:.0f} |")
    print(f"\nResident memory after loading (weights + runtime): ours {results['ours'][args.batch[0]]['rss']/mb:.0f} MB, "
          f"transformers {results['hf'][args.batch[0]]['rss']/mb:.0f} MB")


if __name__ == "__main__":
    main()
