"""Sharded runs on 8 simulated CPU devices against single-device runs; prints one JSON line per mesh, and writes
each case's single-device run to OUT/CASE.npz (the reference `multihost_check.py`'s results are compared with).

Run by `test_sharding.py` in its own process, every case in one interpreter: XLA_FLAGS must be set before JAX starts.

    python sharding_check.py OUT CASE MESH [MESH ...] [CASE MESH ...]    (MESH as DxFxT[:stacked|:list])
"""
import os
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
import json
import sys
from pathlib import Path
import jax
import jax.numpy as jnp

jax.config.update("jax_default_matmul_precision", "float32")  # as tests/conftest.py: float32 tolerances anywhere
import numpy as np
import optax
from flax import nnx

from paligemma import Sampler, load_checkpoint, train_step
from paligemma.sharding import (ShardedSampler, bytes_per_device, forward, make_mesh, placement, shard_model,
                                sharded_train_step)
from paligemma.testing import reference_config
from paligemma.testing import reference_dir
from sharded_inputs import inputs, params, per_layer

COMPILED = []  # one entry per program XLA compiles
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kw: COMPILED.append(event) if event == "/jax/core/compile/backend_compile_duration" else None)


def programs_compiled(f) -> tuple:
    "(what `f()` returns, how many programs XLA compiled while it ran)."
    before = len(COMPILED)
    out = f()
    return out, len(COMPILED) - before

def run(case, model, mesh=None):
    "Logits, greedy tokens, the parameters after one train step, and the programs compiled by two calls of each."
    x = inputs(case)
    args = [jnp.asarray(x[k]) for k in ("images", "tokens", "input_mask", "mask_ar")]
    run_forward = nnx.jit(lambda m, *a: m(*a)) if mesh is None else lambda m, *a: forward(m, mesh, *a)
    logits, first = programs_compiled(lambda: run_forward(model, *args))
    _, again = programs_compiled(lambda: run_forward(model, *args))  # the same shapes: the same program
    lengths = x["input_mask"].sum(1)
    sampler = Sampler(model) if mesh is None else ShardedSampler(model, mesh=mesh)  # prompts split over the mesh
    generate = lambda: sampler.generate_tokens(x["images"], x["tokens"], lengths, max_new_tokens=4, eos_id=None).tokens
    tokens, generate_first = programs_compiled(generate)
    _, generate_again = programs_compiled(generate)
    compiled = dict(forward=first, forward_again=again, generate=generate_first, generate_again=generate_again)
    # plain SGD: Adam's first step is lr * sign(g), which turns rounding noise in near-zero gradients into lr-sized
    # differences; SGD's update is the gradient itself
    opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
    if mesh is None:
        loss, _ = train_step(model, opt, {k: jnp.asarray(v) for k, v in x.items()})
    else:  # compiled with explicit in/out shardings
        before = {k: v.sharding for k, v in params(model).items()}
        loss, _ = sharded_train_step(model, shard_model(opt, mesh), mesh)(x)
        assert {k: v.sharding for k, v in params(model).items()} == before, "a parameter moved"
    updated = per_layer({k: np.asarray(v) for k, v in params(model).items()})  # comparable across layer layouts
    return np.asarray(logits), np.asarray(tokens), float(loss), updated, compiled


def main(case, meshes, out: Path):
    path = reference_dir() / "bigvision" / case / "params.npz"
    ref_logits, ref_tokens, ref_loss, ref_params, _ = run(case, load_checkpoint(path, dtype=jnp.float32))
    np.savez(out / f"{case}.npz", logits=ref_logits, tokens=ref_tokens, loss=ref_loss,
             **{f"params/{k}": v for k, v in ref_params.items()})
    for shape, layers in meshes:
        mesh = make_mesh(*shape)
        config = None  # read from the checkpoint: the runtime's default layout
        if layers:
            config = reference_config(case)
            config = config.replace(llm=config.llm.replace(stack_layers=layers == "stacked"))
        model = load_checkpoint(path, config=config, dtype=jnp.float32, place=placement(mesh))
        state = params(model)
        unsharded = [k for k, a in state.items() if a.size >= 4096 and a.sharding.is_fully_replicated]
        per_device = bytes_per_device(list(state.values()))
        total = sum(a.nbytes for a in state.values())
        initial = per_layer({k: np.asarray(a) for k, a in state.items()})  # the train step donates these buffers
        logits, tokens, loss, updated, compiled = run(case, model, mesh)
        print(json.dumps(dict(
            case=case, mesh=shape, layers=layers or "default", logits=float(np.abs(logits - ref_logits).max()),
            tokens_equal=bool((tokens == ref_tokens).all()), loss=abs(loss - ref_loss),
            params=max(float(np.abs(updated[k] - ref_params[k]).max()) for k in ref_params),
            step=max(float(np.abs(ref_params[k] - initial[k]).max()) for k in ref_params),
            unsharded=unsharded, compiled=compiled, devices=len(per_device), total_bytes=total,
            max_device_bytes=max(per_device.values()), min_device_bytes=min(per_device.values()))), flush=True)


if __name__ == "__main__":
    # each case's name, then its meshes as DxFxT, optionally with the decoder's layer layout: 2x4x1:stacked
    runs = []
    for arg in sys.argv[2:]:
        if not arg[0].isdigit(): runs.append((arg, []))
        else: runs[-1][1].append((tuple(int(n) for n in arg.split(":")[0].split("x")), arg.partition(":")[2]))
    for case, meshes in runs: main(case, meshes, Path(sys.argv[1]))
