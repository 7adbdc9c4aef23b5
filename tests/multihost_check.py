"""One of two processes of a real multi-process run on one machine: `jax.distributed.initialize` over CPU
collectives (gloo), 4 CPU devices per process, one 2 x 2 x 2 mesh spanning both. Each process passes only its half
of the batch; process 0 writes the gathered logits, greedy tokens, loss and parameters after one
`sharded_train_step` (and its own rows of the tokens) to OUT, which `test_sharding.py` compares with the single-device
run of the whole batch that `sharding_check.py` makes of the same case (the same inputs, weights and step):

    python multihost_check.py PROCESS_ID PORT CASE OUT
"""
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"  # before JAX starts
pid, port, case, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
import jax

jax.config.update("jax_default_matmul_precision", "float32")  # as tests/conftest.py: float32 tolerances anywhere
jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=pid)
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils

from paligemma import load_checkpoint
from paligemma.sharding import (ShardedSampler, forward, make_mesh, placement, shard_batch, shard_model,
                                sharded_train_step)
from paligemma.testing import reference_dir
from sharded_inputs import B, inputs, params, per_layer

NAMES = ("images", "tokens", "input_mask", "mask_ar")


path = reference_dir() / "bigvision" / case / "params.npz"
x = inputs(case)  # the whole batch, as every process could load it
mine = {k: v[pid * B // 2:(pid + 1) * B // 2] for k, v in x.items()}  # data loading by process index
assert jax.process_count() == 2 and jax.device_count() == 8 and jax.local_device_count() == 4

mesh = make_mesh(2, 2, 2)
model = load_checkpoint(path, dtype=jnp.float32, place=placement(mesh))
logits = forward(model, mesh, *shard_batch(tuple(mine[k] for k in NAMES), mesh))
logits = multihost_utils.process_allgather(logits, tiled=True)
tokens = ShardedSampler(model, mesh=mesh).generate_tokens(mine["images"], mine["tokens"], mine["input_mask"].sum(1),
                                                         max_new_tokens=4, eos_id=None).tokens
local_tokens = np.asarray(tokens)  # this process's rows only
tokens = multihost_utils.process_allgather(local_tokens, tiled=True)
step = sharded_train_step(model, shard_model(nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param), mesh), mesh)
loss, _ = step(mine)
loss = float(multihost_utils.process_allgather(loss, tiled=True))
updated = {k: multihost_utils.process_allgather(v, tiled=True) for k, v in params(model).items()}

if pid == 0:  # process 1 has nothing more to do
    np.savez(out, processes=jax.process_count(), devices=jax.device_count(), logits=np.asarray(logits),
             tokens=np.asarray(tokens), own_tokens=local_tokens, loss=loss,
             **{f"params/{k}": np.asarray(v) for k, v in per_layer(updated).items()})
