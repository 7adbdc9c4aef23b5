"""Fine-tuning: train-step throughput of ours beside transformers, and the device memory of full-size fine-tunes.

Run: python bench/train.py [--config paligemma-bench-small] [--batch 8] [--prefix-len 10] [--suffix-len 22]
         [--trainable all attention lora] [--repeats 5] [--layers default|stacked|list]
     python bench/train.py --memory [--memory-config paligemma-3b-224] [--batch 8] [--text-len 64] [--rank 8]
         [--layers default|stacked|list]

Throughput: one AdamW step (global-norm clipping at 1.0, then AdamW) on a batch of images with a prefix and a suffix,
the loss on the suffix only, float32, the same random weights in both; each implementation in its own process.
transformers gets the same inputs (image placeholders, `token_type_ids` 1 on the suffix, labels -100 outside it) and
trains with `torch.optim.AdamW` + `clip_grad_norm_`; "attention" freezes everything but the decoder's
q/k/v/o projections (`requires_grad`), "lora" is ours only (no peft here). `--layers` picks how our decoder stores
its layers (`GemmaConfig.stack_layers`): default, by backend (a list on CPU); stacked; or a list.

Memory (--memory): the compiled train step of a full-size model is lowered from abstract shapes (`nnx.eval_shape`,
`jax.ShapeDtypeStruct`: nothing is allocated) and XLA's `memory_analysis()` read: frozen weights in bfloat16, trained
ones and the Adam moments in float32, bfloat16 compute, remat on, the state donated to the step. The decoder is
stacked here unless `--layers list`: the layout an accelerator gets by default, the one these figures are for.
Prints markdown tables for bench/RESULTS.md.
"""
from __future__ import annotations
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import config_for, hf_model_for, median_time, peak_rss_bytes, reset_peak_rss, rss_bytes  # noqa: E402


def train_inputs(config, batch: int, prefix_len: int, suffix_len: int, seed: int = 0) -> dict:
    "Images and `[bos] prefix \\n | suffix [eos] pad…` rows: suffix lengths vary from half to all of `suffix_len`."
    rng = np.random.default_rng(seed)
    S, T = config.image_size, prefix_len + suffix_len
    tokens = rng.integers(3, 1000, (batch, T)).astype(np.int32)
    tokens[:, 0] = 2
    input_mask = np.zeros((batch, T), bool)
    mask_ar = np.zeros((batch, T), np.int32)
    for b in range(batch):
        n = prefix_len + int(round(suffix_len * (0.5 + 0.5 * b / max(batch - 1, 1))))
        tokens[b, n - 1], tokens[b, n:] = 1, 0  # eos, then padding
        input_mask[b, :n] = True
        mask_ar[b, prefix_len:n] = 1
    images = rng.uniform(-1, 1, (batch, S, S, 3)).astype(np.float32)
    return dict(images=images, tokens=tokens, input_mask=input_mask, mask_ar=mask_ar, loss_mask=mask_ar.copy())


def with_layers(config, layers: str):
    "`config` with its decoder stored as `layers` says: 'stacked', 'list', or 'default' (as built: by backend)."
    if layers == "default": return config
    return config.replace(llm=config.llm.replace(stack_layers=layers == "stacked"))


def run_ours(config_name, batch, prefix_len, suffix_len, kinds, repeats, layers="default"):
    import gc
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from paligemma.finetune import make_optimizer, train_step, trainable_filter
    from paligemma.lora import add_lora
    from common import our_model_from
    config = config_for(config_name)
    hf = hf_model_for(config)
    base = our_model_from(hf, with_layers(config, layers))
    del hf; gc.collect()
    data = {k: jnp.asarray(v) for k, v in train_inputs(config, batch, prefix_len, suffix_len).items()}
    out = {}
    for kind in kinds:
        model = nnx.clone(base, arrays=True)  # fresh arrays: each kind starts from the same weights (donated)
        if kind == "lora": add_lora(model, 8, alpha=16.0, rngs=nnx.Rngs(0))
        opt = make_optimizer(model, 1e-5, 1000, warmup=10, weight_decay=1e-4, wrt=trainable_filter(kind))
        t = time.perf_counter()
        first_loss = float(train_step(model, opt, data)[0])  # compiles; the loss before any update
        first = time.perf_counter() - t
        before = rss_bytes(); reset_peak_rss()
        seconds = median_time(lambda: jax.block_until_ready(train_step(model, opt, data)), repeats)
        out[kind] = dict(seconds=seconds, first_s=first, peak_extra=peak_rss_bytes() - before, loss=first_loss)
        del model, opt; gc.collect()
    return out


def run_hf(config_name, batch, prefix_len, suffix_len, kinds, repeats):
    import torch
    torch.set_num_threads(os.cpu_count())
    config = config_for(config_name)
    P = config.num_image_tokens
    d = train_inputs(config, batch, prefix_len, suffix_len)
    ids = np.concatenate([np.full((batch, P), config.llm.vocab_size), d["tokens"]], 1)  # config_to_hf's image token
    inputs = dict(
        input_ids=torch.tensor(ids, dtype=torch.long), pixel_values=torch.tensor(d["images"].transpose(0, 3, 1, 2)),
        attention_mask=torch.tensor(np.concatenate([np.ones((batch, P), bool), d["input_mask"]], 1), dtype=torch.long),
        token_type_ids=torch.tensor(np.concatenate([np.zeros((batch, P), int), d["mask_ar"]], 1), dtype=torch.long),
        labels=torch.tensor(np.concatenate([np.full((batch, P), -100), np.where(d["loss_mask"] == 1, d["tokens"], -100)],
                                           1), dtype=torch.long), use_cache=False)
    out = {}
    for kind in kinds:
        if kind == "lora": continue
        model = hf_model_for(config).train()
        for name, p in model.named_parameters():
            p.requires_grad_(kind == "all" or ("language_model" in name and "self_attn" in name))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = model(**inputs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss.item()

        t = time.perf_counter(); first_loss = step(); first = time.perf_counter() - t
        before = rss_bytes(); reset_peak_rss()
        seconds = median_time(step, repeats)
        out[kind] = dict(seconds=seconds, first_s=first, peak_extra=peak_rss_bytes() - before, loss=first_loss)
        del model, opt, params
    return out


def memory(config_name, kind, batch, text_len, rank, remat=True, layers="stacked"):
    "XLA's memory analysis of a compiled full-size train step, from abstract shapes only."
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from paligemma import PaliGemma
    from paligemma.finetune import cast_params, make_optimizer, train_step, trainable_filter
    from paligemma.lora import add_lora
    c = config_for(config_name)
    c = with_layers(c, "stacked" if layers == "default" else layers)
    config = c.replace(llm=c.llm.replace(remat=remat), vit=c.vit.replace(remat=remat))

    def build():
        model = PaliGemma(config, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
        if kind == "lora": add_lora(model, rank, rngs=nnx.Rngs(1))
        cast_params(model, kind)  # frozen: bfloat16, trained: float32
        return model, make_optimizer(model, 1e-5, 1000, warmup=10, wrt=trainable_filter(kind))

    model, opt = nnx.eval_shape(build)
    graphdef, state = nnx.split((model, opt))
    S, T = config.image_size, text_len
    data = dict(images=jax.ShapeDtypeStruct((batch, S, S, 3), jnp.float32),
                tokens=jax.ShapeDtypeStruct((batch, T), jnp.int32), input_mask=jax.ShapeDtypeStruct((batch, T), bool),
                mask_ar=jax.ShapeDtypeStruct((batch, T), jnp.int32), loss_mask=jax.ShapeDtypeStruct((batch, T), jnp.int32))

    def step(state, data):  # the same train_step, with the whole train state donated (updated in place)
        model, opt = nnx.merge(graphdef, state)
        loss, norm = train_step(model, opt, data)
        return nnx.state((model, opt)), loss, norm

    sizes = lambda tree: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))
    t = time.perf_counter()
    lowered = jax.jit(step, donate_argnums=0).lower(state, data)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t
    m = compiled.memory_analysis()
    trained = nnx.state(model, trainable_filter(kind))
    total = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes
    return dict(kind=kind, params=sizes(nnx.state(model, nnx.Param)), trained=sizes(trained),
                n_trained=sum(x.size for x in jax.tree.leaves(trained)), opt=sizes(nnx.state(opt)),
                arguments=m.argument_size_in_bytes, outputs=m.output_size_in_bytes, alias=m.alias_size_in_bytes,
                temp=m.temp_size_in_bytes, total=total, compile_s=compile_s, backend=jax.default_backend())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paligemma-bench-small")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prefix-len", type=int, default=10)
    ap.add_argument("--suffix-len", type=int, default=22)
    ap.add_argument("--trainable", nargs="+", default=["all", "attention", "lora"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--memory", action="store_true", help="full-size memory analysis instead of throughput")
    ap.add_argument("--memory-config", default="paligemma-3b-224")
    ap.add_argument("--text-len", type=int, default=64)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--layers", choices=["default", "stacked", "list"], default="default",
                    help="how our decoder stores its layers (GemmaConfig.stack_layers); default: by backend, "
                         "stacked for --memory")
    ap.add_argument("--no-remat", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--side", choices=["ours", "hf", "memory"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    gb = 2 ** 30
    if args.side == "memory":
        print(json.dumps(memory(args.memory_config, args.trainable[0], args.batch, args.text_len, args.rank,
                                remat=not args.no_remat, layers=args.layers)))
        return
    if args.memory:
        print(f"\nTrain-step device memory, `{args.memory_config}`, batch {args.batch}, {args.text_len} text tokens, "
              f"decoder {'stacked' if args.layers == 'default' else args.layers}, bfloat16 frozen weights and compute, float32 trained weights and Adam state, state donated\n")
        print("| trains | trained params | remat | XLA loop-invariant hoisting | weights (GiB) | Adam state (GiB) | "
              "XLA arguments (GiB) | XLA temp (GiB) | total (GiB) | fits 16 GB | compile (s) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for kind, remat, licm in (("attention", True, True), ("lora", True, True), ("attention", True, False),
                                  ("lora", True, False), ("attention", False, False), ("lora", False, False)):
            env = dict(os.environ)
            if not licm:  # the CPU-only cause of the excess: see bench/RESULTS.md
                env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_disable_hlo_passes=while-loop-invariant-code-motion").strip()
            cmd = [sys.executable, __file__, "--side", "memory", "--memory-config", args.memory_config, "--batch",
                   str(args.batch), "--text-len", str(args.text_len), "--rank", str(args.rank), "--trainable", kind,
                   "--layers", args.layers,
                   *(["--no-remat"] if not remat else [])]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode: sys.exit(f"memory {kind} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            name = f"LoRA r={args.rank}" if kind == "lora" else kind
            print(f"| {name} | {r['n_trained'] / 1e6:.1f}M | {'on' if remat else 'off'} | {'on' if licm else 'off'} | "
                  f"{r['params'] / gb:.2f} | {r['opt'] / gb:.2f} | {r['arguments'] / gb:.2f} | {r['temp'] / gb:.2f} | "
                  f"{r['total'] / gb:.2f} | {'yes' if r['total'] < 16e9 else 'no'} | {r['compile_s']:.0f} |", flush=True)
        print(f"\n(XLA backend: {r['backend']}; total = arguments + outputs - aliased + temp)")
        return
    if args.side:
        fn = run_ours if args.side == "ours" else run_hf
        extra = {"layers": args.layers} if args.side == "ours" else {}
        print(json.dumps(fn(args.config, args.batch, args.prefix_len, args.suffix_len, args.trainable, args.repeats,
                            **extra)))
        return
    results = {}
    for side in ("ours", "hf"):
        cmd = [sys.executable, __file__, "--side", side, "--config", args.config, "--batch", str(args.batch),
               "--prefix-len", str(args.prefix_len), "--suffix-len", str(args.suffix_len), "--repeats",
               str(args.repeats), "--layers", args.layers, "--trainable", *args.trainable]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode: sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
        results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    mb, B = 2 ** 20, args.batch
    print(f"\nTrain step, `{args.config}`, batch {B}, prefix {args.prefix_len} + suffix up to {args.suffix_len} "
          f"tokens, float32, AdamW, our layers {args.layers}, {os.cpu_count()} CPU cores\n")
    print("| trains | ours (ex/s) | transformers (ex/s) | speed-up | ours step (ms) | transformers step (ms) | "
          "our compile (s) | our peak extra RSS (MB) | transformers peak extra RSS (MB) | first loss ours / transformers |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in args.trainable:
        o, h = results["ours"][kind], results["hf"].get(kind)
        hf_cols = (f"{B / h['seconds']:.2f} | {h['seconds'] / o['seconds']:.2f}x | {o['seconds'] * 1e3:.0f} | "
                   f"{h['seconds'] * 1e3:.0f}" if h else f"n/a | | {o['seconds'] * 1e3:.0f} | n/a")
        print(f"| {kind} | {B / o['seconds']:.2f} | {hf_cols} | {o['first_s'] - o['seconds']:.1f} | "
              f"{o['peak_extra'] / mb:.0f} | {h['peak_extra'] / mb if h else float('nan'):.0f} | "
              f"{o['loss']:.3f} / {h['loss'] if h else float('nan'):.3f} |")


if __name__ == "__main__":
    main()
