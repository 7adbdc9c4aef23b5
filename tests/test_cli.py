"""The `paligemma` command: its flags, errors, outputs and exit statuses.

Most calls run `main(argv)` in this process (`cli`): what the command prints on stdout and stderr (file descriptors
1 and 2, Python's warnings shown as a fresh process shows them), its status (a flag refused by argparse is its
`SystemExit`), at the matmul precision a user's command runs at. A fresh process (`fresh`) where only one can show
it: the entry point's status and output, what `--help` imports, a whole run's stderr from start-up on, and Ctrl-C.
A fresh process costs about 3.5 s of imports before it starts work."""
import inspect
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

import paligemma
from paligemma.cli import main

SHAPES_PNG = Path(__file__).parent.parent / "nbs" / "images" / "shapes.png"
ENTRY = "import sys; from paligemma.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def env(compilation_cache):
    "The environment of every process: the session's compilation cache, so only the first call of a program compiles."
    return {**os.environ, "PALIGEMMA_COMPILATION_CACHE": compilation_cache}


def fresh(env, *args) -> subprocess.CompletedProcess:
    "`paligemma ARGS` in a fresh process."
    return subprocess.run([sys.executable, "-c", ENTRY, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture
def cli(capfd, monkeypatch, compilation_cache):
    """`cli(*args)`: `paligemma ARGS` run in this process as `main(argv)`, returned as `fresh` returns it: status,
    stdout, and stderr with the Python warnings a fresh process would print (Python's default filters, once per
    place). It runs at JAX's default matmul precision, as the command does (conftest.py pins float32 for the library
    tests), so it compiles the programs a `paligemma` process compiles and shares them through the cache."""
    monkeypatch.setenv("PALIGEMMA_COMPILATION_CACHE", compilation_cache)

    def run(*args) -> subprocess.CompletedProcess:
        argv = [str(a) for a in args]
        capfd.readouterr()
        with warnings.catch_warnings(record=True) as caught, jax.default_matmul_precision(None):
            warnings.resetwarnings()
            warnings.simplefilter("default")
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)  # hidden outside __main__, as in a fresh process
            try: status = main(argv)
            except SystemExit as e: status = 0 if e.code is None else e.code  # argparse: a refused flag, --help
        out, err = capfd.readouterr()
        err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught)
        return subprocess.CompletedProcess(["paligemma", *argv], status, out, err)
    return run


def one_line_error(r, status: int, message: str):
    assert r.returncode == status, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_version(env):
    r = fresh(env, "--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"paligemma {paligemma.__version__}")


def test_help_imports_no_jax(env):
    r = fresh(env, "--help")
    assert r.returncode == 0 and "generate" in r.stdout and "finetune" in r.stdout and "convert" in r.stdout
    code = ("import sys, paligemma.cli as c; c.parser().format_help(); "
            "print(sorted(m for m in ('jax', 'flax', 'numpy') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_help_states_the_defaults_in_use(cli):
    from paligemma.finetune import DEFAULT_BATCH_SIZE, DEFAULT_LORA_RANK, DEFAULT_LR
    import paligemma.finetune as ft
    from paligemma.demo.tiny_model import TINY_MAX_LENGTH
    generate = " ".join(cli("generate", "--help").stdout.split())
    assert f"the model's limit: {TINY_MAX_LENGTH} for the shipped model" in generate
    assert "[y1, x1, y2, x2] (top, left, bottom, right) in pixels of the original image" in generate
    assert "PALIGEMMA_COMPILATION_CACHE=0" in generate
    finetune = cli("finetune", "--help")
    assert finetune.returncode == 0
    text = " ".join(finetune.stdout.split())
    assert ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) in text and f"(default {DEFAULT_LORA_RANK})" in text
    # the data format and the relative-path rule, as the README states them; the command's defaults vs the recipe
    assert '{"image": "images/0.png", "prefix": "answer en how many shapes in words?", "suffix": "two"}' in text
    assert "an image path is relative to the folder of the JSONL file (or absolute)" in text
    assert "--trainable all) for --steps 100" in text
    assert "--trainable all --lr 1e-3 --batch-size 16 --steps 200 on about 500 examples" in text
    assert f"examples per step (default {DEFAULT_BATCH_SIZE})" in text
    assert inspect.signature(ft.finetune).parameters["batch_size"].default == DEFAULT_BATCH_SIZE == 16  # measured
    assert DEFAULT_LR["all"] == 1e-3 and DEFAULT_LR["lora"] == 3e-3 and DEFAULT_LORA_RANK == 8
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert '{"image": "images/0.png", "prefix": "answer en how many shapes in words?", "suffix": "two"}' in readme
    assert "An image path is relative to the folder of the JSONL file (or absolute)" in readme
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
    (GEN + ["--image-size", "0"], "--image-size must be >= 1, got 0"),
    (GEN + ["--image-size", "big"], "--image-size must be an integer, got 'big'"),
    (FT + ["--log-every", "0"], "--log-every must be >= 1, got 0"),
    (FT + ["--steps", "0"], "--steps must be >= 1, got 0"),
    (FT + ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (FT + ["--lora-rank", "0"], "--lora-rank must be >= 1, got 0"),
    (FT + ["--lr", "-0.001"], "--lr must be > 0.0, got -0.001"),
    (FT + ["--lr", "nan"], "--lr must be a finite number, got 'nan'"),
    (FT + ["--steps", "5", "--warmup", "5"], "--warmup must be less than --steps (5), got 5"),
    (["convert", "a.npz", "b.npz", "--format", "ckpt"], "--format: invalid choice: 'ckpt'"),
    # one rule for every output: its folder must exist (checked while parsing, before anything loads)
    (FT + ["--out", "no/such/folder/x.npz"], "--out must be in a folder that exists: 'no/such/folder/x.npz'"),
    (["convert", "a.npz", "no/such/folder/hf"], "DST must be in a folder that exists: 'no/such/folder/hf'"),
    (GEN + ["--draw", "no/such/folder/out.png"], "--draw must be in a folder that exists: 'no/such/folder/out.png'"),
])
def test_flag_errors(cli, argv, message):
    one_line_error(cli(*argv), 2, message)


def test_image_size(cli):
    """--image-size runs the model at N x N, as load_checkpoint(image_size=N) and a Sampler do; N off the patch grid
    is one line naming the flag and the patch size."""
    one_line_error(cli(*GEN, "--image-size", "100"), 1,
                   "--image-size 100 is not a multiple of the model's patch size, 12")
    r = cli(*GEN, "--image-size", "96", "--max-new-tokens", "6", "--json")
    assert r.returncode == 0, r.stderr
    from paligemma import Sampler, load_checkpoint
    from paligemma.demo.tiny_model import TINY_CHECKPOINT, TINY_TOKENIZER
    from paligemma.tokenizer import Tokenizer
    model = load_checkpoint(TINY_CHECKPOINT, dtype="float32", image_size=96)
    assert model.config.num_image_tokens == 64  # (96 / 12)^2, not the trained 36
    expected = Sampler(model, Tokenizer(TINY_TOKENIZER))([SHAPES_PNG], ["caption en"], max_new_tokens=6)[0]
    assert json.loads(r.stdout.splitlines()[0])["answer"] == expected


def test_small_steps_get_a_valid_warmup_by_default(cli, tmp_path):
    "--steps 1 without --warmup: the default warmup (a tenth of the steps) is 0, not -1."
    data = _dataset(tmp_path, 2)
    r = cli("finetune", "--data", data, "--out", tmp_path / "one.npz", "--steps", "1", "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "one.npz").is_file()


def test_convert_refuses_a_non_empty_destination_in_cli_terms(cli, tmp_path):
    from paligemma.demo.tiny_model import TINY_CHECKPOINT
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "keep.txt").write_text("mine")
    one_line_error(cli("convert", TINY_CHECKPOINT, tmp_path / "hf"), 1,
                   "is not empty (pass --overwrite to write into it)")
    (tmp_path / "x.npz").write_bytes(b"old")
    one_line_error(cli("convert", TINY_CHECKPOINT, tmp_path / "x.npz"), 1, "exists (pass --overwrite to replace it)")
    assert (tmp_path / "x.npz").read_bytes() == b"old" and (tmp_path / "hf" / "keep.txt").read_text() == "mine"


def test_hub_checkpoint_without_tokenizer_fails_before_downloading(cli):
    one_line_error(cli(*GEN, "--checkpoint", "hf://google/paligemma-3b-pt-224"), 1, "--checkpoint needs --tokenizer")


def test_draw_missing_folder_fails_before_loading(env, tmp_path):
    """Refused while parsing: the missing --checkpoint is never looked at (that would be status 1). In a fresh process:
    the entry point's status 2 and its one line."""
    r = fresh(env, *GEN, "--checkpoint", tmp_path / "none.npz", "--draw", tmp_path / "no" / "such" / "out.png")
    one_line_error(r, 2, "--draw must be in a folder that exists")


def test_draw_jpeg_and_json_boxes(cli, tmp_path):
    r = cli("generate", SHAPES_PNG, "--prompt", "detect square", "--json", "--draw", tmp_path / "boxes.jpg")
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert [o["label"] for o in answer["objects"]] == ["square", "square"]
    for y1, x1, y2, x2 in (o["box"] for o in answer["objects"]):
        assert 0 <= y1 < y2 <= 72 and 0 <= x1 < x2 <= 72  # y1, x1, y2, x2 in the 72-px image's pixels
    data = (tmp_path / "boxes.jpg").read_bytes()
    assert data[:3] == b"\xff\xd8\xff"  # JPEG's start-of-image marker
    with Image.open(tmp_path / "boxes.jpg") as im: assert im.format == "JPEG" and im.mode == "RGB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes.jpg"]


def test_shipped_model_dtype_and_prompt_notice(cli):
    r = cli("generate", SHAPES_PNG, "--prompt", "detect elephant", "--dtype", "bfloat16")
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


def test_finetuned_checkpoint_remembers_its_tokenizer(cli, tmp_path):
    from paligemma.demo.tiny_model import TINY_CHECKPOINT, TINY_TOKENIZER, TINY_VAE
    data = _dataset(tmp_path, 4)
    r = cli("finetune", "--data", data, "--out", tmp_path / "ft.npz", "--steps", "3", "--batch-size", "4")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ft.tokenizer.model").read_bytes() == TINY_TOKENIZER.read_bytes()
    assert (tmp_path / "ft.vae.npz").read_bytes() == TINY_VAE.read_bytes()
    r = cli("generate", tmp_path / "0.png", "--prompt", "segment square", "--checkpoint", tmp_path / "ft.npz",
            "--draw", tmp_path / "seg.png", "--max-new-tokens", "8")
    assert r.returncode == 0 and r.stdout.strip() and (tmp_path / "seg.png").is_file(), r.stderr
    # convert takes the companions along: a Hugging Face folder keeps them inside, as transformers' repos do
    assert cli("convert", tmp_path / "ft.npz", tmp_path / "ft-hf").returncode == 0
    assert (tmp_path / "ft-hf" / "tokenizer.model").read_bytes() == TINY_TOKENIZER.read_bytes()
    assert (tmp_path / "ft-hf" / "vae.npz").read_bytes() == TINY_VAE.read_bytes()
    # an official checkpoint carries no tokenizer: the flag is still needed, and said so
    one_line_error(cli(*GEN, "--checkpoint", TINY_CHECKPOINT), 1, "--checkpoint needs --tokenizer")


def test_config_errors_say_what_file_was_expected(cli, tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))  # a valid .npz, but not a PaliGemma checkpoint
    one_line_error(cli("convert", tmp_path / "other.npz", tmp_path / "out.npz"), 1,
                   "is not a PaliGemma checkpoint (no 'img/embedding/kernel'): expected a big_vision PaliGemma .npz or a "
                   "Hugging Face PaliGemma folder")
    one_line_error(cli("generate", SHAPES_PNG, "--prompt", "segment square", "--vae", tmp_path / "other.npz",
                       "--json"), 1, f"--vae {tmp_path / 'other.npz'}: ")
    r = cli("generate", SHAPES_PNG, "--prompt", "segment square", "--vae", tmp_path / "other.npz", "--json")
    assert "(expected a mask VQ-VAE .npz" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.npz"]


def coco_decode(rle) -> np.ndarray:
    "COCO's compressed RLE string to a mask, written here from the format's definition (pycocotools' maskApi.c)."
    counts, text, i = [], rle["counts"].encode(), 0
    while i < len(text):
        x, k, more = 0, 0, True
        while more:
            c = text[i] - 48
            x |= (c & 0x1F) << (5 * k)
            more, i, k = bool(c & 0x20), i + 1, k + 1
            if not more and c & 0x10: x |= -1 << (5 * k)
        if len(counts) > 2: x += counts[-2]
        counts.append(x)
    h, w = rle["size"]
    flat = np.zeros(h * w, bool)
    for j, start in enumerate(np.cumsum([0] + counts[:-1])):
        if j % 2: flat[start:start + counts[j]] = True  # runs alternate, zeros first
    return flat.reshape((w, h)).T  # column-major


def test_json_masks_decode_to_the_drawn_pixels(cli, tmp_path):
    from pycocotools import mask as coco
    from paligemma.demo.tiny_model import TINY_VAE
    from paligemma.tasks.detection import draw_detections
    from paligemma.tasks.segmentation import VQVAEDecoder, parse_segmentations
    r = cli("generate", SHAPES_PNG, "--prompt", "segment square", "--json", "--draw", tmp_path / "seg.png")
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    image = np.asarray(Image.open(SHAPES_PNG).convert("RGB"))
    truth = parse_segmentations(answer["answer"], image.shape[:2], VQVAEDecoder.from_npz(TINY_VAE))  # what --draw got
    assert answer["truncated"] is False and len(answer["objects"]) == len(truth) == 2
    masks = []
    for o, t in zip(answer["objects"], truth):
        assert o["mask"]["size"] == [72, 72] and isinstance(o["mask"]["counts"], str)
        mask = coco_decode(o["mask"])
        np.testing.assert_array_equal(mask, t["mask"])
        np.testing.assert_array_equal(coco.decode(o["mask"]).astype(bool), mask)  # pycocotools reads it as written
        assert 100 < mask.sum() < 72 * 72 / 2
        masks.append(mask)
    # the picture --draw painted is the one the JSON describes, and a mask one pixel off paints another
    drawn = np.asarray(Image.open(tmp_path / "seg.png").convert("RGB")).astype(int)
    def redraw(masks, name):
        draw_detections(image, [dict(o, mask=m) for o, m in zip(answer["objects"], masks)], path=tmp_path / name)
        return np.asarray(Image.open(tmp_path / name).convert("RGB")).astype(int)
    assert np.abs(redraw(masks, "again.png") - drawn).max() <= 8  # boxes rounded to 0.01 px in the JSON
    shifted = [np.roll(masks[0], 1, axis=1)] + masks[1:]
    assert np.abs(redraw(shifted, "shifted.png") - drawn).max() > 40


def test_truncated_answers_are_flagged(cli, env):
    r = cli("generate", SHAPES_PNG, "--prompt", "segment square", "--json", "--max-new-tokens", "10")
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["truncated"] is True and answer["notices"] == [r.stderr.strip()], (answer, r.stderr)
    assert "reached --max-new-tokens (10)" in r.stderr and r.stderr.count("\n") == 1
    # a whole run in a fresh process: nothing on stderr from start-up, loading, compiling or the answer
    r = fresh(env, "generate", SHAPES_PNG, "--prompt", "detect square", "--json")
    assert r.returncode == 0, r.stderr
    assert (json.loads(r.stdout)["truncated"], json.loads(r.stdout)["notices"], r.stderr) == (False, [], "")


def test_photograph_gets_a_notice(cli):
    "matplotlib's portrait is flagged as unlike the training scenes; the README's scene is not."
    import matplotlib.cbook
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    r = cli("generate", photo, SHAPES_PNG, "--prompt", "caption en")
    assert r.returncode == 0, r.stderr
    notices = r.stderr.strip().splitlines()
    assert len(notices) == 1 and notices[0].startswith(f"{photo}: this image is unlike the shapes scenes"), r.stderr
    assert len(r.stdout.strip().splitlines()) == 2  # both answered all the same


# Ctrl-C at chosen moments of a real run. The child marks the moments on stderr (`@load`, `@compile`: the sampler's
# or the train step's program going to XLA, `@run`: that program compiled and about to run, `@write`: a file written
# under its `.partial` name, held there a moment);
# the test sends SIGINT when it reads the mark. The child starts with SIGINT at its default, whatever this process
# does with it (under `nohup` it is ignored, and a child would inherit that), and every wait has a timeout.
MARKED = '''
import os, sys, time
from jax._src import compiler
import paligemma.checkpoints, paligemma.saving, paligemma.finetune, paligemma.tasks.detection
from paligemma.sampler import Sampler
def mark(name): print("@" + name, file=sys.stderr, flush=True)
def before(owner, attr, name):
    f = getattr(owner, attr)
    def wrapped(*a, **k): mark(name); return f(*a, **k)
    setattr(owner, attr, wrapped)
started = []
def starting(owner, attr):
    f = getattr(owner, attr)
    def wrapped(*a, **k): started.append(attr); return f(*a, **k)
    setattr(owner, attr, wrapped)
starting(Sampler, "generate_tokens"); starting(paligemma.finetune, "finetune")
compile_ = compiler.backend_compile_and_load
def compile_marked(*a, **k):
    first = started and not started[-1] == "marked"
    if first: started.append("marked"); mark("compile")
    compiled = compile_(*a, **k)
    if first:
        mark("run")  # the program is compiled: what follows runs it
        if os.environ["HOLD_AT"] == "run": time.sleep(60)  # held there: a tiny model's run can end before the signal
    return compiled
compiler.backend_compile_and_load = compile_marked
before(paligemma.checkpoints, "load_checkpoint", "load")
def slow_writes(owner):
    write_atomic = owner.write_atomic
    def held(write):
        def w(tmp): write(tmp); mark("write"); time.sleep(60)
        return w
    owner.write_atomic = lambda writes: write_atomic([(path, held(w)) for path, w in writes])
slow_writes(paligemma.saving)  # save_checkpoint's
slow_writes(paligemma.tasks.detection)  # draw_detections' (imported from paligemma.io)
from paligemma.cli import main
sys.exit(main())
'''


def _default_sigint():  # in the child, before exec: Python installs its KeyboardInterrupt handler only over SIG_DFL
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_at(env, argv, mark: str, cwd: Path, timeout: float = 300) -> tuple[int, str, str]:
    "Run `argv` with its moments marked, send SIGINT at `@mark`; (status, stdout, stderr without the marks)."
    if mark in ("compile", "run"):  # a cached program is loaded, never compiled: no persistent cache (ours or JAX's
        # own, which .ci/run sets), so that the moment happens; loading and writing happen either way
        env = {**{k: v for k, v in env.items() if k != "JAX_COMPILATION_CACHE_DIR"}, "PALIGEMMA_COMPILATION_CACHE": "0"}
    p = subprocess.Popen([sys.executable, "-c", MARKED, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=cwd, env={**env, "HOLD_AT": mark}, preexec_fn=_default_sigint)
    lines, out = queue.Queue(), []
    readers = [threading.Thread(target=lambda: [lines.put(l) for l in p.stderr] + [lines.put(None)], daemon=True),
               threading.Thread(target=lambda: out.extend(p.stdout), daemon=True)]
    for t in readers: t.start()
    err, deadline = [], time.monotonic() + timeout
    try:
        while True:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))  # queue.Empty: the mark never came
            assert line is not None, f"ended (status {p.wait(10)}) before @{mark}: {''.join(err)}"
            if line.strip() == f"@{mark}": break
            err.append(line)
        p.send_signal(signal.SIGINT)
        status = p.wait(timeout=120)
    finally:
        if p.poll() is None: p.kill()
    for t in readers: t.join(timeout=30)
    while not lines.empty():
        line = lines.get()
        if line is not None: err.append(line)
    return status, "".join(out), "".join(l for l in err if not l.startswith("@"))


@pytest.mark.parametrize("command, mark", [("generate", "load"), ("generate", "compile"), ("generate", "run"),
                                           ("generate", "write"),
                                           ("finetune", "compile"), ("finetune", "write"),
                                           ("convert", "load"), ("convert", "write")])
def test_ctrl_c(env, tmp_path, command, mark):
    "Status 130, `interrupted` on one line, no traceback, and nothing written: no picture, checkpoint or .partial."
    from paligemma.demo.tiny_model import TINY_CHECKPOINT
    argv = {"generate": ["generate", SHAPES_PNG, "--prompt", "segment square", "--draw", tmp_path / "seg.png"],
            "finetune": ["finetune", "--data", _dataset(tmp_path, 2), "--out", tmp_path / "ft.npz", "--steps", "3",
                         "--batch-size", "2"],
            "convert": ["convert", TINY_CHECKPOINT, tmp_path / "hf"]}[command]
    before = sorted(p.name for p in tmp_path.iterdir())
    status, out, err = interrupt_at(env, argv, mark, tmp_path)
    assert status == 130, (status, err)
    assert [l for l in err.splitlines() if not l.startswith("step")] == ["interrupted"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing half-written


def test_ctrl_c_between_renames_removes_what_was_written(tmp_path, monkeypatch):
    "An interrupt after the tokenizer beside the checkpoint is in place but before the weights are: neither stays."
    from paligemma import cli
    from paligemma.demo.tiny_model import TINY_CHECKPOINT, TINY_TOKENIZER, TINY_VAE
    import shutil
    shutil.copy(TINY_CHECKPOINT, tmp_path / "src.npz")
    shutil.copy(TINY_TOKENIZER, tmp_path / "src.tokenizer.model")
    shutil.copy(TINY_VAE, tmp_path / "src.vae.npz")
    renames, replace = [], os.replace
    def interrupted_replace(a, b):
        if renames: raise KeyboardInterrupt
        renames.append(b); replace(a, b)
    monkeypatch.setattr(os, "replace", interrupted_replace)
    assert cli.main(["convert", str(tmp_path / "src.npz"), str(tmp_path / "dst.npz")]) == 130
    assert renames == [tmp_path / "dst.tokenizer.model"]  # one file was in place when the interrupt came
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.npz", "src.tokenizer.model", "src.vae.npz"]


def test_ctrl_c_in_a_gc_callback_is_not_lost(env, tmp_path):
    "Python drops an exception raised in a gc callback (JAX registers one): the command raises it again, and stops."
    from paligemma.demo.tiny_model import TINY_CHECKPOINT
    code = '''
import gc, sys
import paligemma.checkpoints
load = paligemma.checkpoints.load_checkpoint
def interrupted_in_gc(*a, **k):
    def callback(phase, info):
        gc.callbacks.remove(callback)
        raise KeyboardInterrupt  # as a Ctrl-C arriving while the collector runs
    gc.callbacks.append(callback)
    gc.collect()
    return load(*a, **k)
paligemma.checkpoints.load_checkpoint = interrupted_in_gc
from paligemma.cli import main
sys.exit(main())
'''
    r = subprocess.run([sys.executable, "-c", code, "convert", TINY_CHECKPOINT, tmp_path / "out.npz"], env=env,
                       capture_output=True, text=True, timeout=300, preexec_fn=_default_sigint)
    assert (r.returncode, r.stderr) == (130, "interrupted\n"), r.stderr
    assert list(tmp_path.iterdir()) == []
