"The `paligemma` command as a user runs it: a fresh process per call, exit statuses, stdout and stderr."
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import paligemma

SHAPES_PNG = Path(__file__).parent.parent / "nbs" / "images" / "shapes.png"
ENTRY = "import sys; from paligemma.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    "The environment of every call: one compilation cache for the module, so only the first call compiles."
    return {**os.environ, "PALIGEMMA_COMPILATION_CACHE": str(tmp_path_factory.mktemp("jax-cache"))}


def cli(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-c", ENTRY, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def one_line_error(r, status: int, message: str):
    assert r.returncode == status, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_version(env):
    r = cli(env, "--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"paligemma {paligemma.__version__}")


def test_help_imports_no_jax(env):
    r = cli(env, "--help")
    assert r.returncode == 0 and "generate" in r.stdout and "finetune" in r.stdout and "convert" in r.stdout
    code = ("import sys, paligemma.cli as c; c.parser().format_help(); "
            "print(sorted(m for m in ('jax', 'flax', 'numpy') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_help_states_the_defaults_in_use(env):
    from paligemma.finetune import DEFAULT_LORA_RANK, DEFAULT_LR
    from paligemma.demo.tiny_model import TINY_MAX_LENGTH
    generate = " ".join(cli(env, "generate", "--help").stdout.split())
    assert f"the model's limit: {TINY_MAX_LENGTH} for the shipped model" in generate
    assert "[y1, x1, y2, x2] (top, left, bottom, right) in pixels of the original image" in generate
    assert "PALIGEMMA_COMPILATION_CACHE=0" in generate
    finetune = cli(env, "finetune", "--help")
    assert finetune.returncode == 0
    text = " ".join(finetune.stdout.split())
    assert ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) in text and f"(default {DEFAULT_LORA_RANK})" in text
    from paligemma.cli import parser
    commands = parser()._subparsers._group_actions[0].choices
    for name, command in commands.items():
        for action in command._actions: assert action.help, (name, action.option_strings)  # every flag explained


GEN = ["generate", SHAPES_PNG, "--prompt", "caption en"]
FT = ["finetune", "--data", "train.jsonl", "--out", "out.npz"]


@pytest.mark.parametrize("argv, message", [
    (GEN + ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (GEN + ["--batch-size", "-1"], "--batch-size must be >= 1, got -1"),
    (GEN + ["--max-new-tokens", "0"], "--max-new-tokens must be >= 1, got 0"),
    (GEN + ["--max-length", "x"], "--max-length must be an integer, got 'x'"),
    (GEN + ["--temperature", "-1"], "--temperature must be >= 0.0, got -1"),
    (GEN + ["--top-p", "0"], "--top-p must be > 0.0, got 0"),
    (GEN + ["--top-k", "0"], "--top-k must be >= 1, got 0"),
    (GEN + ["--seed", "-3"], "--seed must be >= 0, got -3"),
    (["generate", SHAPES_PNG, "--prompt", ""], "--prompt must not be empty"),
    (GEN + ["--draw", "boxes.xyz"], "--draw must end in an image extension (.png, .jpg"),
    (GEN + ["--dtype", "int8"], "--dtype: invalid choice: 'int8'"),
    (FT + ["--log-every", "0"], "--log-every must be >= 1, got 0"),
    (FT + ["--steps", "0"], "--steps must be >= 1, got 0"),
    (FT + ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (FT + ["--lora-rank", "0"], "--lora-rank must be >= 1, got 0"),
    (FT + ["--lr", "-0.001"], "--lr must be > 0.0, got -0.001"),
    (FT + ["--lr", "nan"], "--lr must be a finite number, got 'nan'"),
    (FT + ["--steps", "5", "--warmup", "5"], "--warmup must be less than --steps (5), got 5"),
    (["convert", "a.npz", "b.npz", "--format", "ckpt"], "--format: invalid choice: 'ckpt'"),
])
def test_flag_errors(env, argv, message):
    one_line_error(cli(env, *argv), 2, message)


def test_small_steps_get_a_valid_warmup_by_default(env, tmp_path):
    "--steps 1 without --warmup: the default warmup (a tenth of the steps) is 0, not -1."
    data = _dataset(tmp_path, 2)
    r = cli(env, "finetune", "--data", data, "--out", tmp_path / "one.npz", "--steps", "1", "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "one.npz").is_file()


def test_convert_refuses_a_non_empty_destination_in_cli_terms(env, tmp_path):
    from paligemma.demo.tiny_model import TINY_CHECKPOINT
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "keep.txt").write_text("mine")
    one_line_error(cli(env, "convert", TINY_CHECKPOINT, tmp_path / "hf"), 1,
                   "is not empty (pass --overwrite to write into it)")
    (tmp_path / "x.npz").write_bytes(b"old")
    one_line_error(cli(env, "convert", TINY_CHECKPOINT, tmp_path / "x.npz"), 1, "exists (pass --overwrite to replace it)")
    assert (tmp_path / "x.npz").read_bytes() == b"old" and (tmp_path / "hf" / "keep.txt").read_text() == "mine"


def test_hub_checkpoint_without_tokenizer_fails_before_downloading(env):
    one_line_error(cli(env, *GEN, "--checkpoint", "hf://google/paligemma-3b-pt-224"), 1, "--checkpoint needs --tokenizer")


def test_draw_missing_folder_fails_before_loading(env, tmp_path):
    "Refused while parsing: the missing --checkpoint is never looked at (that would be status 1)."
    r = cli(env, *GEN, "--checkpoint", tmp_path / "none.npz", "--draw", tmp_path / "no" / "such" / "out.png")
    one_line_error(r, 2, "--draw must be in a folder that exists")


def test_draw_jpeg_and_json_boxes(env, tmp_path):
    r = cli(env, "generate", SHAPES_PNG, "--prompt", "detect square", "--json", "--draw", tmp_path / "boxes.jpg")
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert [o["label"] for o in answer["objects"]] == ["square", "square"]
    for y1, x1, y2, x2 in (o["box"] for o in answer["objects"]):
        assert 0 <= y1 < y2 <= 72 and 0 <= x1 < x2 <= 72  # y1, x1, y2, x2 in the 72-px image's pixels
    data = (tmp_path / "boxes.jpg").read_bytes()
    assert data[:3] == b"\xff\xd8\xff"  # JPEG's start-of-image marker
    with Image.open(tmp_path / "boxes.jpg") as im: assert im.format == "JPEG" and im.mode == "RGB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes.jpg"]


def test_shipped_model_dtype_and_prompt_notice(env):
    r = cli(env, "generate", SHAPES_PNG, "--prompt", "detect elephant", "--dtype", "bfloat16")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    if hasattr(__import__("paligemma.demo.tiny_model").demo.tiny_model, "prompt_notice"):
        assert r.stderr.count("\n") == 1 and '"detect elephant" is outside them' in r.stderr, r.stderr


def _dataset(folder: Path, n: int) -> Path:
    "`n` shapes scenes and a JSONL file asking for the leftmost shape's colour."
    from paligemma.demo.shapes import random_scene
    rng, rows = np.random.default_rng(0), []
    for i in range(n):
        image, objects = random_scene(rng)
        Image.fromarray(image).save(folder / f"{i}.png")
        rows.append(dict(image=f"{i}.png", prefix="answer en leftmost color?", suffix=objects[0].color))
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "train.jsonl"


def test_finetuned_checkpoint_remembers_its_tokenizer(env, tmp_path):
    from paligemma.demo.tiny_model import TINY_CHECKPOINT, TINY_TOKENIZER, TINY_VAE
    data = _dataset(tmp_path, 4)
    r = cli(env, "finetune", "--data", data, "--out", tmp_path / "ft.npz", "--steps", "3", "--batch-size", "4")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ft.tokenizer.model").read_bytes() == TINY_TOKENIZER.read_bytes()
    assert (tmp_path / "ft.vae.npz").read_bytes() == TINY_VAE.read_bytes()
    r = cli(env, "generate", tmp_path / "0.png", "--prompt", "segment square", "--checkpoint", tmp_path / "ft.npz",
            "--draw", tmp_path / "seg.png", "--max-new-tokens", "8")
    assert r.returncode == 0 and r.stdout.strip() and (tmp_path / "seg.png").is_file(), r.stderr
    # convert takes the companions along: a Hugging Face folder keeps them inside, as transformers' repos do
    assert cli(env, "convert", tmp_path / "ft.npz", tmp_path / "ft-hf").returncode == 0
    assert (tmp_path / "ft-hf" / "tokenizer.model").read_bytes() == TINY_TOKENIZER.read_bytes()
    assert (tmp_path / "ft-hf" / "vae.npz").read_bytes() == TINY_VAE.read_bytes()
    # an official checkpoint carries no tokenizer: the flag is still needed, and said so
    one_line_error(cli(env, *GEN, "--checkpoint", TINY_CHECKPOINT), 1, "--checkpoint needs --tokenizer")


def test_ctrl_c_during_finetune(env, tmp_path):
    data = _dataset(tmp_path, 2)
    p = subprocess.Popen([sys.executable, "-c", ENTRY, "finetune", "--data", str(data), "--out",
                          str(tmp_path / "ft.npz"), "--steps", "100000", "--batch-size", "2", "--log-every", "1"],
                         stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    before = []
    for line in p.stderr:  # wait until training has started
        before.append(line)
        if line.startswith("step"): break
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(timeout=120) == 130, before + [rest]
    after = [l for l in rest.splitlines() if not l.startswith("step")]
    assert after == ["interrupted"], rest
    assert sorted(q.name for q in tmp_path.iterdir()) == ["0.png", "1.png", "train.jsonl"]  # nothing written
