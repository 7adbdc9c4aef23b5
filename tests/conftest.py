"""Shared test setup: float32 matmuls on every backend, seeds, and a clean skip where the reference data is missing."""
import jax
import numpy as np
import pytest
import torch

from paligemma.testing import ReferenceMissing

# The tolerances in these tests (1e-4 against big_vision's float32 logits, 1e-5 between sharded and single-device
# runs) are float32 tolerances. On CPU jax computes float32 matmuls in float32 anyway; on TPU the default precision
# is one bfloat16 pass and on NVIDIA GPUs TF32, each about 1e-3 relative. Pin full float32 so that the same
# tolerances hold on every backend.
jax.config.update("jax_default_matmul_precision", "float32")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    "A test (or fixture) that finds no reference data is reported as skipped, with the one line that says why."
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(ReferenceMissing):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    return report
