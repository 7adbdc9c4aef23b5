"""Fine-tuning defaults by measurement: learning rate per `trainable`, LoRA rank, scale and initialisation.

The shipped tiny model learns a question it never saw from 16 training scenes with the README's recipe
(`paligemma.finetune.finetune`: batch 8, 200 steps, a tenth of warmup, cosine decay): by default "answer en how many
shapes in words?" -> one / two / three (it knows the digits), or with --task leftmost "answer en leftmost color?" ->
the colour word of the leftmost shape (a skill it lacks). Each run is scored on 100 fresh held-out scenes by exact
match of the greedy answer (`Sampler`) and by how many answers are in the new format (one of the possible answers),
on its 16 training scenes, and on an old task (held-out "caption en" exact match) to see what it forgot. The final
training loss is the mean of the last 10 steps.

    python bench/finetune_defaults.py --runs lora:3e-3 all:3e-4       # chosen runs, markdown rows on stdout
    python bench/finetune_defaults.py --task leftmost --sweep-seeds 1 2  # the whole grid (minutes on a GPU)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_default_matmul_precision", "float32")
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import paligemma.finetune as ft  # noqa: E402
from paligemma.checkpoints import load_checkpoint  # noqa: E402
from paligemma.lora import LoRA  # noqa: E402
from paligemma.demo.tiny_model import load_tiny  # noqa: E402
from paligemma.processor import Processor  # noqa: E402
from paligemma.sampler import Sampler  # noqa: E402
from paligemma.demo.shapes import COLORS, caption_text, random_scene  # noqa: E402

WORDS = ("one", "two", "three")
TASKS = {  # name: (prompt, answer of a scene's objects (left to right), every possible answer)
    "count-words": ("answer en how many shapes in words?", lambda objects: WORDS[len(objects) - 1], WORDS),
    "leftmost": ("answer en leftmost color?", lambda objects: objects[0].color, tuple(COLORS)),
}


def scenes(seed: int, n: int, image_size: int, processor: Processor, task: str) -> list[dict]:
    "n random scenes as fine-tuning examples of the new question, with their captions."
    prompt, answer, _ = TASKS[task]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image, objects = random_scene(rng, image_size)
        out.append(dict(image=processor.image(image), prefix=prompt, suffix=answer(objects),
                        caption=caption_text(objects)))
    return out


def answers(sampler: Sampler, model, examples: list[dict], prompt: str, max_new_tokens: int) -> list[str]:
    sampler.model = model  # one sampler for every model of the same structure: its program compiles once
    return sampler(np.stack([e["image"] for e in examples]), [prompt] * len(examples), max_new_tokens=max_new_tokens)


def exact(got: list[str], want: list[str]) -> float:
    return float(np.mean([g == w for g, w in zip(got, want)]))


def run(base, tokenizer, sampler, train, heldout, *, task, trainable, lr, rank, alpha, init, steps, seed) -> dict:
    model = nnx.clone(base)
    original_add_lora = ft.add_lora  # finetune calls its own module's name: patch it there
    if init == "a0":  # A = 0, B ~ N(0, 1/rank): the adapter still starts at zero, but B moves A first
        def add_lora(m, r, *, alpha=None, rngs, mlp=True):
            original_add_lora(m, r, alpha=alpha, rngs=rngs, mlp=mlp)
            key = jax.random.key(seed + 1)
            for _, node in list(nnx.iter_graph(m)):
                if isinstance(node, LoRA):
                    key, sub = jax.random.split(key)
                    node.b[...] = jax.random.normal(sub, node.b.shape, node.b.dtype) / np.sqrt(r)
                    node.a[...] = jnp.zeros_like(node.a[...])
        ft.add_lora = add_lora
    t = time.perf_counter()
    try:
        losses = ft.finetune(model, tokenizer, train, trainable, steps=steps, lr=lr, lora_rank=rank, lora_alpha=alpha,
                             seed=seed)
    finally:
        ft.add_lora = original_add_lora
    train_s = time.perf_counter() - t
    prompt, _, valid = TASKS[task]
    held = answers(sampler, model, heldout, prompt, 4)
    return dict(trainable=trainable, lr=lr, rank=rank if trainable == "lora" else None,
                alpha=alpha if trainable == "lora" else None, init=init if trainable == "lora" else None, seed=seed,
                loss_first=losses[0], loss_final=float(np.mean(losses[-10:])), train_s=train_s,
                heldout=exact(held, [e["suffix"] for e in heldout]), format=float(np.mean([a in valid for a in held])),
                train=exact(answers(sampler, model, train, prompt, 4), [e["suffix"] for e in train]),
                caption=exact(answers(sampler, model, heldout, "caption en", 24), [e["caption"] for e in heldout]),
                sample=held[:6])


def sweep() -> list[dict]:
    "A learning-rate sweep per trainable (LoRA: rank 8, alpha = rank)."
    runs = [dict(trainable="all", lr=x) for x in (1e-4, 3e-4, 1e-3, 3e-3)]
    runs += [dict(trainable="attention", lr=x) for x in (1e-4, 1e-3, 3e-3, 1e-2)]
    runs += [dict(trainable="lora", lr=x) for x in (1e-4, 1e-3, 3e-3, 1e-2, 3e-2)]
    return [dict(dict(rank=8, alpha=None, init="b0"), **r) for r in runs]


def grid(only: str | None, lr: float | None, rank: int | None, alpha: float | None) -> list[dict]:
    "The runs: the sweep, then LoRA ranks, LoRA scale alpha / rank, LoRA initialisation."
    if only:
        return [dict(trainable=only, lr=lr or ft.DEFAULT_LR[only], rank=rank or ft.DEFAULT_LORA_RANK,
                     alpha=alpha, init="b0")]
    runs = [dict(trainable="lora", lr=x, rank=r) for r in (2, 4, 16, 32) for x in (3e-3, 1e-2)]
    runs += [dict(trainable="lora", lr=x, rank=8, alpha=32.0) for x in (2.5e-4, 7.5e-4, 2.5e-3)]  # scale 4
    runs += [dict(trainable="lora", lr=x, init="a0") for x in (1e-4, 3e-3)]
    return sweep() + [dict(dict(rank=8, alpha=None, init="b0"), **r) for r in runs]


def parse_run(spec: str) -> dict:
    "`lora:1e-2:8:16:a0` -> dict(trainable='lora', lr=0.01, rank=8, alpha=16.0, init='a0')."
    t, lr, *rest = spec.split(":")
    rank = int(rest[0]) if rest else ft.DEFAULT_LORA_RANK
    alpha = float(rest[1]) if len(rest) > 1 else None
    return dict(trainable=t, lr=float(lr), rank=rank, alpha=alpha, init=rest[2] if len(rest) > 2 else "b0")


def row(r: dict) -> str:
    lora = f"{r['rank']} | {r['alpha'] or r['rank']:g} | {'A=0, B random' if r['init'] == 'a0' else 'B=0'}" \
        if r["trainable"] == "lora" else "| |"
    return (f"| {r['trainable']} | {r['lr']:g} | {lora} | {r['seed']} | {r['loss_first']:.2f} | {r['loss_final']:.3f} | "
            f"{r['heldout']:.0%} | {format(r['format'], '.0%') if 'format' in r else '-'} | {r['train']:.0%} | {r['caption']:.0%} | {r['train_s']:.1f} | "
            f"{', '.join(r['sample'][:4])} |")


HEADER = ("| trainable | lr | rank | alpha | LoRA init | data seed | first loss | final loss | held-out exact | "
          "held-out in the new format | train exact | held-out caption | train (s) | held-out answers |\n|" + "---|" * 14)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=tuple(TASKS), default="count-words")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--train", type=int, default=16, help="training scenes")
    p.add_argument("--heldout", type=int, default=100, help="held-out scenes (fresh seed)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="data seeds (training scenes and run seed)")
    p.add_argument("--only", choices=("all", "attention", "lora"), help="one trainable, --lr (default: DEFAULT_LR)")
    p.add_argument("--lr", type=float)
    p.add_argument("--rank", type=int)
    p.add_argument("--alpha", type=float)
    p.add_argument("--sweep-seeds", type=int, nargs="*", default=[],
                   help="after the grid, the learning-rate sweep again on these data seeds")
    p.add_argument("--defaults-seeds", type=int, nargs="*", default=[],
                   help="after that, the defaults of each trainable again on these data seeds")
    p.add_argument("--runs", nargs="+", metavar="TRAINABLE:LR[:RANK[:ALPHA[:INIT]]]",
                   help="these runs instead of the grid, e.g. lora:1e-2 all:1e-3 lora:3e-3:16 lora:1e-3:8:32 lora:1e-4:8:8:a0")
    p.add_argument("--checkpoint", help="start from these weights (big_vision .npz) instead of the shipped tiny model's")
    p.add_argument("--json", help="also write every run here")
    args = p.parse_args(argv)
    base, tokenizer, _ = load_tiny()
    if args.checkpoint: base = load_checkpoint(args.checkpoint, dtype=jnp.float32, progress=False)
    S = base.config.image_size
    processor = Processor(tokenizer, S)
    heldout = scenes(1_000_003, args.heldout, S, processor, args.task)
    sampler = Sampler(base, tokenizer)
    prompt = TASKS[args.task][0]
    before = answers(sampler, base, heldout, prompt, 4)
    print(f"task {args.task!r}: {prompt!r}; device: {jax.devices()[0].device_kind}; before fine-tuning, held-out exact "
          f"{exact(before, [e['suffix'] for e in heldout]):.0%}, answers {before[:6]}; caption exact "
          f"{exact(answers(sampler, base, heldout, 'caption en', 24), [e['caption'] for e in heldout]):.0%}", flush=True)
    print(HEADER, flush=True)
    results = []
    runs = [parse_run(x) for x in args.runs] if args.runs else grid(args.only, args.lr, args.rank, args.alpha)
    plan = [(r, s) for s in args.seeds for r in runs]
    plan += [(r, s) for s in args.sweep_seeds for r in sweep()]
    plan += [(dict(trainable=t, lr=ft.DEFAULT_LR[t], rank=ft.DEFAULT_LORA_RANK, alpha=ft.DEFAULT_LORA_ALPHA, init="b0"), s)
             for s in args.defaults_seeds for t in ("all", "attention", "lora")]
    for r, seed in plan:
        train = scenes(seed, args.train, S, processor, args.task)
        results.append(run(base, tokenizer, sampler, train, heldout, task=args.task, steps=args.steps, seed=seed, **r))
        print(row(results[-1]), flush=True)
        if args.json: Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
