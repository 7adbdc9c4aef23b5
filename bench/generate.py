"""Generation: our compiled sampler beside transformers `generate` on the same random weights, greedy.

Run: python bench/generate.py [--config paligemma-bench-small] [--batch 1 8] [--new-tokens 32] [--dtype float32]
                              [--layers default|stacked|list]
     python bench/generate.py --config paligemma-3b-224 --dtype bfloat16 --separate
Prefill latency = a generation of 1 token; decode time per step = (time for N tokens - time for 1) / (N - 1).
Calls alternate between the two implementations in one process; with --separate (full-size models, whose two
copies would not fit in memory together) each runs in its own process, the weights (random, bfloat16-valued)
passing through a safetensors file written once. Prints a markdown table for bench/RESULTS.md.
"""
from __future__ import annotations
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import config_for, copy_bandwidth, hf_model_for, peak_rss_bytes, random_inputs, reset_peak_rss  # noqa: E402


class Ours:
    name = "ours"
    compiles = True

    def __init__(self, model):
        from paligemma import Sampler
        self.sampler = Sampler(model)

    def generate(self, images, tokens, n):
        import jax
        lengths = np.full((tokens.shape[0],), tokens.shape[1], np.int32)
        out = self.sampler.generate_tokens(images, tokens, lengths, n, eos_id=None)
        return np.asarray(jax.block_until_ready(out.tokens))


class Theirs:
    name = "transformers"
    compiles = False

    def __init__(self, model):
        import torch
        torch.set_num_threads(os.cpu_count())
        self.model = model

    def generate(self, images, tokens, n):
        import torch
        cfg = self.model.config
        P = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
        B = tokens.shape[0]
        ids = torch.tensor(np.concatenate([np.full((B, P), cfg.image_token_id), tokens], 1), dtype=torch.long)
        pixels = torch.tensor(images.transpose(0, 3, 1, 2)).to(self.model.dtype)
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, pixel_values=pixels, attention_mask=torch.ones_like(ids),
                                      token_type_ids=torch.zeros_like(ids), do_sample=False, max_new_tokens=n,
                                      min_new_tokens=n, pad_token_id=0)
        return out[:, ids.shape[1]:].numpy()


def measure(impls, config, batch, n, repeats):
    "Alternate the implementations; return {name: dict(prefill, step, compile, tokens)}."
    images, tokens = random_inputs(config, batch, 16)
    res = {}
    for impl in impls:  # warm-up: compiles both lengths (ours); one full run (transformers)
        res[impl.name] = dict(t1=[], tn=[], warm=[])
        for m in ((1, n) if impl.compiles else (n,)):
            t = time.perf_counter(); out = impl.generate(images, tokens, m)
            res[impl.name]["warm"].append(time.perf_counter() - t)
        res[impl.name]["tokens"] = out
    for _ in range(repeats):
        for impl in impls:
            t = time.perf_counter(); impl.generate(images, tokens, 1); res[impl.name]["t1"].append(time.perf_counter() - t)
            t = time.perf_counter(); impl.generate(images, tokens, n); res[impl.name]["tn"].append(time.perf_counter() - t)
    out = {}
    for impl in impls:
        r = res[impl.name]
        t1, tn = statistics.median(r["t1"]), statistics.median(r["tn"])
        out[impl.name] = dict(prefill=t1, step=(tn - t1) / (n - 1), tokens=r["tokens"].tolist(),
                              compile=sum(r["warm"]) - t1 - tn if impl.compiles else 0.0)
    return out


def build(config_name, dtype, layers="default", seed=0):
    "(our config, transformers model) with the same random weights."
    config = config_for(config_name)
    if layers != "default": config = config.replace(llm=config.llm.replace(stack_layers=layers == "stacked"))
    return config, hf_model_for(config, seed=seed, dtype=dtype)


def ours_from_hf_state(config, state, dtype):
    import jax.numpy as jnp
    from paligemma.formats.hf import model_from_hf
    return model_from_hf(state, config, dtype=jnp.bfloat16 if dtype == "bfloat16" else jnp.float32,
                         compute_dtype=jnp.float32)


def torch_to_numpy(t):
    import torch, ml_dtypes
    if t.dtype == torch.bfloat16: return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def llm_param_bytes(config, dtype):
    c = config.llm
    per_layer = (c.num_heads * c.width * c.head_dim * 2 + 2 * c.num_kv_heads * c.width * c.head_dim
                 + 3 * c.width * c.mlp_dim + (4 if c.post_norms else 2) * c.width)
    n = c.vocab_size * c.width + c.depth * per_layer + c.width
    return n * (2 if dtype == "bfloat16" else 4)


def side_main(args):
    "One implementation in this process (--separate); ours never imports torch, so its peak RSS is its own."
    config = config_for(args.config)
    if args.layers != "default": config = config.replace(llm=config.llm.replace(stack_layers=args.layers == "stacked"))
    if args.side == "ours":
        from paligemma.formats.hf import SafetensorsCheckpoint  # lazy: one tensor read at a time
        impl = Ours(ours_from_hf_state(config, SafetensorsCheckpoint(args.weights), args.dtype))
    else:
        from safetensors.torch import load_file
        state = load_file(args.weights)
        hf = hf_model_for(config, dtype=args.dtype)  # the shape; its weights are replaced by the file's
        missing, unexpected = hf.load_state_dict(state, strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
        hf.tie_weights()
        impl = Theirs(hf.eval())
        del state
    reset_peak_rss()  # from here on: generation only (loading has its own benchmark, bench/load.py)
    out = {b: measure([impl], config, b, args.new_tokens, args.repeats)[impl.name] for b in args.batch}
    if args.side == "ours":
        import jax
        from flax import nnx
        out[args.batch[0]]["weights"] = sum(a.nbytes for a in jax.tree.leaves(nnx.state(impl.sampler.model, nnx.Param)))
    out[args.batch[0]]["peak_rss"] = peak_rss_bytes()
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paligemma-bench-small")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--separate", action="store_true")
    ap.add_argument("--layers", choices=["default", "stacked", "list"], default="default",
                    help="how our decoder stores its layers (GemmaConfig.stack_layers); default: by backend")
    ap.add_argument("--side", choices=["ours", "transformers"], help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side: return side_main(args)

    if args.separate:  # the file holds bfloat16 values (exact in float32 too), so a float32 run fits in memory
        from safetensors.torch import save_file
        config, hf = build(args.config, "bfloat16", args.layers)
        weights = Path(tempfile.mkdtemp()) / "weights.safetensors"
        save_file({k: v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"}, str(weights))
        del hf
        results = {}
        for side in ("ours", "transformers"):
            cmd = [sys.executable, __file__, "--side", side, "--weights", str(weights), "--config", args.config,
                   "--dtype", args.dtype, "--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats),
                   "--batch", *map(str, args.batch), "--layers", args.layers]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode: sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
            print(side, proc.stdout.strip().splitlines()[-1], file=sys.stderr)  # raw figures, kept if a later side fails
            for b, r in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                results.setdefault(int(b), {})[side] = r
        weights.unlink()
    else:
        config, hf = build(args.config, args.dtype, args.layers)
        state = {k: torch_to_numpy(v) for k, v in hf.state_dict().items()}
        impls = [Ours(ours_from_hf_state(config, state, args.dtype)), Theirs(hf)]
        del state
        results = {b: measure(impls, config, b, args.new_tokens, args.repeats) for b in args.batch}

    bw = copy_bandwidth()
    floor = llm_param_bytes(config, args.dtype) / bw
    print(f"\nGeneration, `{args.config}`, {args.dtype} weights{'' if args.layers == 'default' else ', layers ' + args.layers}, greedy, 16-token prompt + "
          f"{config.num_image_tokens} image tokens, {args.new_tokens} new tokens, {os.cpu_count()} CPU cores\n")
    print("| batch | ours prefill (ms) | transformers prefill (ms) | ours decode (tok/s) | transformers decode (tok/s) "
          "| decode speed-up | ours ms/step | transformers ms/step | ours compile (s) | same tokens |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for b in args.batch:
        o, h = results[b]["ours"], results[b]["transformers"]
        same = np.mean(np.asarray(o["tokens"]) == np.asarray(h["tokens"]))
        print(f"| {b} | {o['prefill']*1e3:.0f} | {h['prefill']*1e3:.0f} | {b/o['step']:.1f} | {b/h['step']:.1f} | "
              f"{h['step']/o['step']:.2f}x | {o['step']*1e3:.1f} | {h['step']*1e3:.1f} | {o['compile']:.1f} | "
              f"{same:.0%} |")
    print(f"\nDecode bandwidth floor: decoder parameters {llm_param_bytes(config, args.dtype)/1e9:.2f} GB / measured "
          f"copy bandwidth {bw/1e9:.1f} GB/s = {floor*1e3:.1f} ms/step; ours at batch {args.batch[0]}: "
          f"{results[args.batch[0]]['ours']['step']/floor:.2f}x the floor")
    o = results[args.batch[0]]["ours"]
    if "weights" in o:
        print(f"Peak RSS while generating: ours {o['peak_rss']/1e9:.2f} GB for {o['weights']/1e9:.2f} GB of weights "
              f"({o['peak_rss']/o['weights']:.2f}x); transformers {results[args.batch[0]]['transformers']['peak_rss']/1e9:.2f} GB")


if __name__ == "__main__":
    main()
