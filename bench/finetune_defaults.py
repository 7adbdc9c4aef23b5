"""Fine-tuning defaults by measurement: learning rate per `trainable`, LoRA rank and scale, batch, how many examples.

The shipped tiny model learns a question it never saw from a few training scenes with the README's recipe
(`paligemma.finetune.finetune`: 200 steps, a tenth of warmup, cosine decay). Four new questions of different answer
forms (`--task`, several at once):

- `count-words`  "answer en how many shapes in words?" -> one / two / three (a word; it knows the digits)
- `leftmost`     "answer en leftmost color?" -> the colour of the leftmost shape (a word)
- `colors`       "answer en colors?" -> the colours left to right, e.g. `red blue red` (a list of attributes)
- `locate`       "locate leftmost shape" -> the leftmost shape's box as four `<loc>` tokens (a location)

Each run is scored on 100 fresh held-out scenes (seed 1,000,003) by the greedy answer (`Sampler`): "correct" is exact
text match for the word and list tasks, and for `locate` an answer of exactly four `<loc>` tokens whose box has IoU
>= 0.5 with the leftmost shape's (Acc@0.5, PaliGemma's metric for referring expressions); "exact text" is the exact
token match for every task; "new format" the share of answers in the new form (one of the possible words, a list of
colour words, four `<loc>` tokens). Also: correct on the training scenes, and the old task "caption en" on the held-out
scenes after the fine-tune (what it forgot). `--mix K` adds K "caption en" examples of the training scenes to the
training set. The final training loss is the mean of the last 10 steps.

    python bench/finetune_defaults.py --task count-words colors locate --runs lora:3e-3 --json runs.json
    python bench/finetune_defaults.py --task count-words leftmost colors locate --train 512 --batch 16 \
        --seeds 0 1 2 --runs all:1e-3       # the chosen recipe (bench/RESULTS.md, "Defaults on three tasks")
    python bench/finetune_defaults.py --task leftmost --sweep-seeds 1 2  # the learning-rate grid (minutes on a GPU)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_default_matmul_precision", "float32")
import re  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import paligemma.finetune as ft  # noqa: E402
from paligemma.checkpoints import load_checkpoint  # noqa: E402
from paligemma.demo.tiny_model import box_iou, load_tiny  # noqa: E402
from paligemma.processor import Processor  # noqa: E402
from paligemma.sampler import Sampler  # noqa: E402
from paligemma.demo.shapes import COLORS, caption_text, random_scene  # noqa: E402
from paligemma.tasks.detection import boxes_to_text, parse_detections  # noqa: E402

WORDS = ("one", "two", "three")
FOUR_LOCS = re.compile(r"(<loc\d{4}>){4}")


def _locate_correct(answer: str, objects, S: int) -> bool:
    "Four `<loc>` tokens whose box has IoU >= 0.5 with the leftmost shape's."
    if not FOUR_LOCS.fullmatch(answer): return False
    found = parse_detections(answer, S)  # empty where y2 < y1 or x2 < x1
    return bool(found) and box_iou(found[0]["box"], objects[0].box) >= 0.5


TASKS = {  # name: (prompt, answer(objects left to right, S), in the new format(answer), correct(answer, objects, S),
    #               most new tokens)
    "count-words": ("answer en how many shapes in words?", lambda o, S: WORDS[len(o) - 1], lambda a: a in WORDS,
                    None, 4),
    "leftmost": ("answer en leftmost color?", lambda o, S: o[0].color, lambda a: a in COLORS, None, 4),
    "colors": ("answer en colors?", lambda o, S: " ".join(x.color for x in o),
               lambda a: 1 <= len(a.split(" ")) <= 3 and all(w in COLORS for w in a.split(" ")), None, 10),
    "locate": ("locate leftmost shape", lambda o, S: boxes_to_text([o[0].box], [""], S),
               lambda a: bool(FOUR_LOCS.fullmatch(a)), _locate_correct, 6),
}


def scenes(seed: int, n: int, image_size: int, processor: Processor, task: str) -> list[dict]:
    "n random scenes as fine-tuning examples of the new question, with their objects and captions."
    prompt, answer, *_ = TASKS[task]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image, objects = random_scene(rng, image_size)
        out.append(dict(image=processor.image(image), prefix=prompt, suffix=answer(objects, image_size),
                        caption=caption_text(objects), objects=objects))
    return out


def answers(sampler: Sampler, model, examples: list[dict], prompt: str, max_new_tokens: int) -> list[str]:
    sampler.model = model  # one sampler for every model of the same structure: its program compiles once
    return sampler(np.stack([e["image"] for e in examples]), [prompt] * len(examples), max_new_tokens=max_new_tokens)


def exact(got: list[str], want: list[str]) -> float:
    return float(np.mean([g == w for g, w in zip(got, want)]))


def correct(task: str, got: list[str], examples: list[dict], S: int) -> float:
    "The share of right answers: exact text, or the task's own test (`locate`: IoU >= 0.5)."
    test = TASKS[task][3]
    if test is None: return exact(got, [e["suffix"] for e in examples])
    return float(np.mean([test(g, e["objects"], S) for g, e in zip(got, examples)]))


def run(base, tokenizer, sampler, train, heldout, *, task, trainable, lr, rank, alpha, steps, seed, batch=8,
        mix=0) -> dict:
    model = nnx.clone(base)
    prompt, _, new_format, _, max_new = TASKS[task]
    examples = train + [dict(image=e["image"], prefix="caption en", suffix=e["caption"]) for e in train[:mix]]
    t = time.perf_counter()
    losses = ft.finetune(model, tokenizer, examples, trainable, steps=steps, lr=lr, lora_rank=rank, lora_alpha=alpha,
                         batch_size=batch, seed=seed)
    train_s = time.perf_counter() - t
    S = base.config.image_size
    held = answers(sampler, model, heldout, prompt, max_new)
    return dict(task=task, trainable=trainable, lr=lr, rank=rank if trainable == "lora" else None,
                alpha=alpha if trainable == "lora" else None, seed=seed,
                batch=batch, n_train=len(train), mix=mix, steps=steps,
                loss_first=losses[0], loss_final=float(np.mean(losses[-10:])), train_s=train_s,
                heldout=correct(task, held, heldout, S), heldout_text=exact(held, [e["suffix"] for e in heldout]),
                format=float(np.mean([new_format(a) for a in held])),
                train=correct(task, answers(sampler, model, train, prompt, max_new), train, S),
                caption=exact(answers(sampler, model, heldout, "caption en", 24), [e["caption"] for e in heldout]),
                sample=held[:6])


def sweep() -> list[dict]:
    "A learning-rate sweep per trainable (LoRA: rank 8, alpha = rank)."
    runs = [dict(trainable="all", lr=x) for x in (1e-4, 3e-4, 1e-3, 3e-3)]
    runs += [dict(trainable="attention", lr=x) for x in (1e-4, 1e-3, 3e-3, 1e-2)]
    runs += [dict(trainable="lora", lr=x) for x in (1e-4, 1e-3, 3e-3, 1e-2, 3e-2)]
    return [dict(dict(rank=8, alpha=None), **r) for r in runs]


def grid(only: str | None, lr: float | None, rank: int | None, alpha: float | None) -> list[dict]:
    "The runs: the sweep, then LoRA ranks and LoRA scale alpha / rank."
    if only:
        return [dict(trainable=only, lr=lr or ft.DEFAULT_LR[only], rank=rank or ft.DEFAULT_LORA_RANK,
                     alpha=alpha)]
    runs = [dict(trainable="lora", lr=x, rank=r) for r in (2, 4, 16, 32) for x in (3e-3, 1e-2)]
    runs += [dict(trainable="lora", lr=x, rank=8, alpha=32.0) for x in (2.5e-4, 7.5e-4, 2.5e-3)]  # scale 4
    return sweep() + [dict(dict(rank=8, alpha=None), **r) for r in runs]


def parse_run(spec: str) -> dict:
    "`lora:1e-2:8:16` -> dict(trainable='lora', lr=0.01, rank=8, alpha=16.0)."
    t, lr, *rest = spec.split(":")
    rank = int(rest[0]) if rest else ft.DEFAULT_LORA_RANK
    alpha = float(rest[1]) if len(rest) > 1 else None
    return dict(trainable=t, lr=float(lr), rank=rank, alpha=alpha)


def row(r: dict) -> str:
    "One markdown row of a run (the columns of `HEADER`)."
    lora = f"{r['rank']} | {r['alpha'] or r['rank']:g}" if r["trainable"] == "lora" else "|"
    return (f"| {r['task']} | {r['trainable']} | {r['lr']:g} | {lora} | {r['batch']} | {r['n_train']} | {r['mix']} | "
            f"{r['seed']} | {r['loss_first']:.2f} | {r['loss_final']:.3f} | {r['heldout']:.0%} | {r['heldout_text']:.0%} | "
            f"{r['format']:.0%} | {r['train']:.0%} | {r['caption']:.0%} | {r['train_s']:.0f} | "
            f"{', '.join(r['sample'][:3])} |")


HEADER = ("| task | trainable | lr | rank | alpha | batch | train scenes | + caption examples | data seed | first loss | "
          "final loss | held-out correct | held-out exact text | held-out in the new format | train correct | "
          "held-out caption | train (s) | held-out answers |\n|" + "---|" * 18)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=tuple(TASKS), nargs="+", default=["count-words"])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--train", type=int, default=16, help="training scenes")
    p.add_argument("--batch", type=int, default=8, help="examples per step")
    p.add_argument("--mix", type=int, default=0, help="add this many 'caption en' examples of the training scenes")
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
    p.add_argument("--runs", nargs="+", metavar="TRAINABLE:LR[:RANK[:ALPHA]]",
                   help="these runs instead of the grid, e.g. lora:1e-2 all:1e-3 lora:3e-3:16 lora:1e-3:8:32")
    p.add_argument("--checkpoint", help="start from these weights (big_vision .npz) instead of the shipped tiny model's")
    p.add_argument("--json", help="also write every run here (rewritten after each run)")
    args = p.parse_args(argv)
    base, tokenizer, _ = load_tiny()
    if args.checkpoint: base = load_checkpoint(args.checkpoint, dtype=jnp.float32, progress=False)
    S = base.config.image_size
    processor = Processor(tokenizer, S)
    sampler = Sampler(base, tokenizer)
    heldout = scenes(1_000_003, args.heldout, S, processor, args.task[0])
    print(f"device: {jax.devices()[0].device_kind}; {args.train} training scenes, batch {args.batch}, {args.steps} steps, "
          f"{args.mix} caption examples mixed in; before fine-tuning: held-out caption exact "
          f"{exact(answers(sampler, base, heldout, 'caption en', 24), [e['caption'] for e in heldout]):.0%}", flush=True)
    for task in args.task:
        heldout = scenes(1_000_003, args.heldout, S, processor, task)
        prompt, max_new = TASKS[task][0], TASKS[task][4]
        before = answers(sampler, base, heldout, prompt, max_new)
        print(f"task {task!r}: {prompt!r} -> {heldout[0]['suffix']!r}; before fine-tuning, held-out correct "
              f"{correct(task, before, heldout, S):.0%}, answers {before[:3]}", flush=True)
    print(HEADER, flush=True)
    results = []
    runs = [parse_run(x) for x in args.runs] if args.runs else grid(args.only, args.lr, args.rank, args.alpha)
    plan = [(r, s) for s in args.seeds for r in runs]
    plan += [(r, s) for s in args.sweep_seeds for r in sweep()]
    plan += [(dict(trainable=t, lr=ft.DEFAULT_LR[t], rank=ft.DEFAULT_LORA_RANK, alpha=ft.DEFAULT_LORA_ALPHA), s)
             for s in args.defaults_seeds for t in ("all", "attention", "lora")]
    for task in args.task:
        heldout = scenes(1_000_003, args.heldout, S, processor, task)
        for r, seed in plan:
            train = scenes(seed, args.train, S, processor, task)
            results.append(run(base, tokenizer, sampler, train, heldout, task=task, steps=args.steps, seed=seed,
                               batch=args.batch, mix=args.mix, **r))
            print(row(results[-1]), flush=True)
            if args.json: Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
