"""Shared test setup: float32 matmuls on every backend, one compilation cache, seeds, a small tokenizer, and a clean
skip without reference data."""
import atexit
import os
import shutil
import sys
import tempfile

import jax
import numpy as np
import pytest

from paligemma.testing import ReferenceMissing

# Sentences for the small SentencePiece models tests train (`spm_model`): prompts of every task and a few captions
# and answers, digits included.
TEST_TEXTS = [
    "caption en", "answer en", "detect", "segment", "ocr", "caption es", "answer fr",
    "a cat sitting on a red mat", "two dogs playing in the park", "a man riding a bicycle down the street",
    "what color is the car?", "how many people are in the picture?", "is there a dog in the image?",
    "a bowl of fruit on a wooden table", "the sign says stop", "a plane flying over the mountains at sunset",
    "cat ; dog ; person", "there are 3 birds on the wire", "the year 2024 on a poster", "yes", "no", "red", "blue",
]

# The tolerances in these tests (1e-4 against big_vision's float32 logits, 1e-5 between sharded and single-device
# runs) are float32 tolerances. On CPU jax computes float32 matmuls in float32 anyway; on TPU the default precision
# is one bfloat16 pass and on NVIDIA GPUs TF32, each about 1e-3 relative. Pin full float32 so that the same
# tolerances hold on every backend.
jax.config.update("jax_default_matmul_precision", "float32")

# One persistent compilation cache for the whole session, this process and every `paligemma` command the tests
# start (the `compilation_cache` fixture): a program compiled once (the tiny model's prefill and decode, a train
# step) is loaded, not compiled again, by the next test or command that builds the same one. `JAX_COMPILATION_CACHE_DIR`
# names it (.ci/run sets one for `nbdev_test` and `pytest` both, so the tests reuse what the notebooks compiled; a
# developer may keep one between runs); else a fresh folder per session. Every program is kept: the tiny model's
# compile in well under the default 1 s threshold, and writing them costs less than compiling (bench/RESULTS.md).
COMPILATION_CACHE = os.environ.get("JAX_COMPILATION_CACHE_DIR")
if not COMPILATION_CACHE:
    COMPILATION_CACHE = tempfile.mkdtemp(prefix="paligemma-test-jax-")
    atexit.register(shutil.rmtree, COMPILATION_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", COMPILATION_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture(autouse=True)
def _seed():
    if "torch" in sys.modules: sys.modules["torch"].manual_seed(0)  # tests that use torch import it at the top
    np.random.seed(0)


@pytest.fixture(scope="session")
def compilation_cache() -> str:
    "The session's compilation cache folder: `PALIGEMMA_COMPILATION_CACHE` of the `paligemma` commands tests run."
    return COMPILATION_CACHE


@pytest.fixture(scope="session")
def spm_model(tmp_path_factory):
    "A small SentencePiece model with PaliGemma's <loc>/<seg> pieces, trained once on TEST_TEXTS; copy it to change it."
    from paligemma.tokenizer import train_sentencepiece
    return train_sentencepiece(TEST_TEXTS, tmp_path_factory.mktemp("spm") / "test.model")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    "A test (or fixture) that finds no reference data is reported as skipped, with the one line that says why."
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(ReferenceMissing):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    return report
