"""Every code block of README.md, run as written, in order, in one empty folder, as a reader with a fresh clone would.

A block that prints shows what it prints in an indented block right after it (pictures may stand between): the
output must be that. A block whose first line is `# needs official weights` is the one kind skipped (the weights
cannot be had offline). The install and CI commands are not run (they would reinstall the package under test, or run
this suite inside itself): each is checked against what it names instead, `settings.ini`'s repository and `.ci/run`.
`paligemma` on the PATH is this Python's entry point, so the commands run the code under test."""
import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIP_MARK = "# needs official weights"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


def readme_blocks(text: str) -> list[dict]:
    "Each fenced block: its language, code, first line number and the output shown after it (or None)."
    blocks = []
    for m in FENCE.finditer(text):
        after, shown = text[m.end():].splitlines(), None
        rest = [l for l in after[:40]]
        while rest and (not rest[0].strip() or rest[0].startswith("![")): rest.pop(0)  # blank lines and pictures
        if rest and rest[0].startswith("    "):
            shown = []
            while rest and (rest[0].startswith("    ") or not rest[0].strip()): shown.append(rest.pop(0)[4:])
            shown = "\n".join(shown).strip()
        blocks.append(dict(lang=m.group(1), code=m.group(2), line=text[:m.start()].count("\n") + 1, shown=shown))
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def kind(block: dict) -> str:
    "'skip' (needs official weights), 'setup' (install and CI commands), or 'run'."
    lines = [l.strip() for l in block["code"].splitlines() if l.strip()]
    if lines[0].startswith(SKIP_MARK): return "skip"
    if all(l.startswith(("pip install", "nbdev_test")) for l in lines): return "setup"
    return "run"


def test_readme_has_blocks_of_each_kind():
    kinds = [kind(b) for b in BLOCKS]
    assert kinds.count("run") >= 6 and kinds.count("setup") == 2 and kinds.count("skip") == 1, kinds
    for b in BLOCKS: assert b["lang"] in ("sh", "python"), (b["line"], b["lang"])


def test_setup_commands_name_this_repository_and_ci():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    setup = [l.split("#")[0].strip() for b in BLOCKS if kind(b) == "setup" for l in b["code"].splitlines() if l.strip()]
    git = [l for l in setup if "git+" in l]
    assert git == [f'pip install "{cfg["DEFAULT"]["lib_name"]} @ git+{cfg["DEFAULT"]["git_url"]}"'], git
    for line in setup:
        if line not in git: assert line in ci, f"{line!r} is not what .ci/run runs"


@pytest.fixture(scope="module")
def reader(tmp_path_factory, compilation_cache):
    "An empty folder with the clone's pictures the README names, and a PATH whose `paligemma` is the code under test."
    folder = tmp_path_factory.mktemp("reader")
    shutil.copytree(ROOT / "nbs" / "images", folder / "nbs" / "images")
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "paligemma"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import sys; from paligemma.cli import main; "
                    f"sys.exit(main())' \"$@\"\n")
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PALIGEMMA_COMPILATION_CACHE": compilation_cache,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return folder, env


@pytest.mark.parametrize("block", [b for b in BLOCKS if kind(b) == "run"], ids=lambda b: f"line{b['line']}")
def test_block_runs_as_written(reader, block):
    folder, env = reader
    argv = ["bash", "-e", "-c", block["code"]] if block["lang"] == "sh" else [sys.executable, "-c", block["code"]]
    r = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "Traceback" not in r.stderr, f"README line {block['line']}:\n{r.stderr[-3000:]}"
    if block["shown"] is not None:
        assert r.stdout.strip() == block["shown"], f"README line {block['line']} prints {r.stdout!r}"
