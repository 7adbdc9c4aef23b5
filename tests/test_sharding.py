"""The model sharded over 8 simulated CPU devices equals the single-device run (float32, 1e-5).

JAX reads the device count when it starts, and other test files start it in this process with one device, so the
sharded runs happen in subprocesses (`sharding_check.py`) that set XLA_FLAGS first. They run on the CPU whatever
accelerator is present (JAX_PLATFORMS=cpu): the 8 simulated devices are what make every mesh shape possible."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paligemma.testing import REFERENCE_ENV, ReferenceMissing, reference_dir
from sharded_inputs import B

HERE = Path(__file__).parent
# PaliGemma 1 (one KV head, MQA) on 8x1x1 and 2x4x1 here, and on 2x2x2 split over two processes (`multihost`);
# PaliGemma 2 (grouped-query: its 2 KV heads split over tensor) on 2x2x2. The decoder's layers in the runtime's
# default layout (a list on CPU), except on 2x4x1: stacked (scanned), the layout accelerators use by default
RUNS = [("pg1_tiny", ["8x1x1", "2x4x1:stacked"]), ("pg2_tiny", ["2x2x2"])]


def reference_env() -> dict:
    "The environment for the subprocesses, naming the reference folder found here; skips the test without one."
    try: root = reference_dir()
    except ReferenceMissing as e: pytest.skip(str(e))
    if not (root / "bigvision").is_dir(): pytest.skip(f"no bigvision/ in the reference folder {root}")
    return {**os.environ, REFERENCE_ENV: str(root.resolve())}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def finish(*procs) -> list[str]:
    "The stdout of each subprocess, all of which must succeed."
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs): assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outs]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[list, Path]:
    """(one result per mesh of `RUNS`, the folder of the single-device references and the two-process results).

    Both checks start at once: every case of `RUNS` in one interpreter (`sharding_check.py`, which also writes each
    case's single-device run), and two processes joined by jax.distributed.initialize, 4 CPU devices each
    (`multihost_check.py`), whose results are compared below with that same single-device run of pg1_tiny."""
    env, out = reference_env(), tmp_path_factory.mktemp("sharding")
    popen = lambda args, env: subprocess.Popen([sys.executable, *map(str, args)], env=env, stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True)
    sharded = popen([HERE / "sharding_check.py", out, *(a for case, meshes in RUNS for a in (case, *meshes))],
                    {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"})
    host_env = {**env, "JAX_PLATFORMS": "cpu"}
    host_env.pop("XLA_FLAGS", None)
    port = free_port()
    hosts = [popen([HERE / "multihost_check.py", i, port, "pg1_tiny", out / "multihost.npz"], host_env)
             for i in (0, 1)]
    rows = [json.loads(line) for line in finish(sharded, *hosts)[0].splitlines() if line.startswith("{")]
    assert len(rows) == sum(len(m) for _, m in RUNS)
    return rows, out


@pytest.fixture(scope="module")
def results(runs): return runs[0]


def max_diff(a, b) -> float: return float(np.abs(np.asarray(a) - np.asarray(b)).max())


@pytest.fixture(scope="module")
def multihost(runs):
    "The two-process run of pg1_tiny against the single-device run of the whole batch."
    with np.load(runs[1] / "multihost.npz") as got, np.load(runs[1] / "pg1_tiny.npz") as ref:
        keys = [k for k in ref.files if k.startswith("params/")]
        assert sorted(keys) == sorted(k for k in got.files if k.startswith("params/"))
        return dict(processes=int(got["processes"]), devices=int(got["devices"]),
                    logits=max_diff(got["logits"], ref["logits"]), loss=max_diff(got["loss"], ref["loss"]),
                    params=max(max_diff(got[k], ref[k]) for k in keys),
                    tokens_equal=np.array_equal(got["tokens"], ref["tokens"]),
                    own_rows_equal=np.array_equal(got["own_tokens"], ref["tokens"][:B // 2]))  # process 0's rows


def test_two_processes_equal_single_device(multihost):
    r = multihost
    assert (r["processes"], r["devices"]) == (2, 8), r
    assert r["logits"] < 1e-5 and r["loss"] < 1e-5 and r["params"] < 1e-5, r
    assert r["tokens_equal"] and r["own_rows_equal"], r  # each process got back the rows of its own prompts


def test_outputs_equal_single_device(results):
    assert {r["layers"] for r in results} == {"default", "stacked"}, results  # both layer layouts were run
    for r in results:
        assert r["logits"] < 1e-5, r
        assert r["tokens_equal"], r
        assert r["loss"] < 1e-5, r
        assert r["params"] < 1e-5 < r["step"], r  # the step moved the weights, identically


def test_one_program_per_shape(results):
    "A sharded forward or generation compiles on its first call; a second with the same shapes compiles nothing."
    for r in results:
        c = r["compiled"]
        assert c["forward"] >= 1 and c["generate"] >= 1 and c["forward_again"] == c["generate_again"] == 0, r


def test_parameters_are_sharded(results):
    for r in results:
        assert r["devices"] == 8
        assert r["unsharded"] == [], r  # every parameter of 4096 elements or more is split
        assert r["max_device_bytes"] < 1.3 * r["total_bytes"] / 8, r  # about 1/N of the bytes on each device
