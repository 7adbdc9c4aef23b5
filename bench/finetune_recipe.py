"""The README's fine-tuning recipe, timed: where its CPU seconds go, for one or more copies of the package.

Run: python bench/finetune_recipe.py [--package DIR ...] [--repeats 1] [--cache]

For each package folder (a directory holding `paligemma/`; default: this checkout), in a fresh empty folder:
1. the README's Python block that writes 512 shapes scenes and `shapes_data/train.jsonl` (taken from README.md);
2. `paligemma finetune --data shapes_data/train.jsonl --out finetuned.npz --trainable all --lr 1e-3 --batch-size 16
   --steps 200`, as README.md writes it, run in a child process through `paligemma.cli.main`; the child wraps
   `paligemma.finetune._train_step` (what every step of `finetune` calls) to record the CPU seconds at the end of
   each step (its loss read back, as `finetune` does anyway), so the first step (its compile) and the median of the
   others are split out;
3. `paligemma generate shapes_data/images/0.png --checkpoint finetuned.npz --prompt "..."` (its answer printed).

CPU = user + sys of the child (all its threads). JAX's persistent compilation cache is off unless `--cache` (then a
fresh folder per package, so each pays its compiles once). Packages alternate within a repeat, so each comparison is
taken under the same load. Prints a markdown table for bench/RESULTS.md.
"""
from __future__ import annotations
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FINETUNE = ("finetune --data shapes_data/train.jsonl --out finetuned.npz --trainable all --lr 1e-3 --batch-size 16 "
            "--steps 200").split()
GENERATE = ["generate", "shapes_data/images/0.png", "--checkpoint", "finetuned.npz", "--prompt",
            "answer en how many shapes in words?"]
STEP_TIMER = """
import json, os, sys
import paligemma.finetune as ft
marks, step = [], ft._train_step
def timed(*a, **k):
    out = step(*a, **k)
    float(out[2])  # the loss, read back as finetune does right after
    t = os.times(); marks.append(t.user + t.system)
    return out
ft._train_step = timed
t = os.times(); start = t.user + t.system
from paligemma.cli import main
code = main(sys.argv[1:])
json.dump(dict(start=start, marks=marks), open("step_marks.json", "w"))
sys.exit(code)
"""


def writer_block() -> str:
    "The README's Python block that writes the scenes (the one that imports random_scene)."
    blocks = re.findall(r"^```python\n(.*?)^```\n", (ROOT / "README.md").read_text(), re.S | re.M)
    return next(b for b in blocks if "random_scene" in b and "train.jsonl" in b)


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    "(CPU s of the child, wall s, its stdout)."
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode: raise RuntimeError(f"{cmd[:3]} failed:\n{done.stderr[-3000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall, done.stdout


def run_recipe(package: Path, cache: bool) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="recipe-"))
    env = {**os.environ, "PYTHONPATH": str(package),
           "PALIGEMMA_COMPILATION_CACHE": str(folder / "jax-cache") if cache else "off"}
    row = {}
    row["write"], _, _ = timed([sys.executable, "-c", writer_block()], folder, env)
    row["finetune"], row["finetune_wall"], _ = timed([sys.executable, "-c", STEP_TIMER, *FINETUNE], folder, env)
    marks = json.loads((folder / "step_marks.json").read_text())
    steps = [b - a for a, b in zip(marks["marks"], marks["marks"][1:])]
    row["before_first"] = marks["marks"][0] - marks["start"]  # imports, load, data, tokenizing, first step
    row["step_median"] = sorted(steps)[len(steps) // 2]
    row["steps_sum"] = sum(steps)
    row["generate"], _, row["answer"] = timed([sys.executable, "-c", "import sys; from paligemma.cli import main; "
                                               "sys.exit(main(sys.argv[1:]))", *GENERATE], folder, env)
    row["answer"] = row["answer"].strip()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", nargs="+", type=Path, default=[ROOT])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--cache", action="store_true", help="a persistent compilation cache (fresh per package)")
    args = ap.parse_args()
    print("| package | write scenes | finetune (CPU s) | start-up + first step | median step | 199 steps "
          "| generate | answer |\n|---|---|---|---|---|---|---|---|", flush=True)
    for _ in range(args.repeats):
        for package in args.package:
            r = run_recipe(package.resolve(), args.cache)
            print(f"| {package} | {r['write']:.1f} | {r['finetune']:.1f} (wall {r['finetune_wall']:.0f}) "
                  f"| {r['before_first']:.1f} | {r['step_median']:.3f} | {r['steps_sum']:.1f} | {r['generate']:.1f} "
                  f"| {r['answer']} |", flush=True)


if __name__ == "__main__":
    main()
