"""Per-device memory of full-size PaliGemma models sharded over 8 and 16 devices, from abstract shapes only.

Run: python bench/scale.py [--configs paligemma-3b-224 paligemma2-10b-448 paligemma2-28b-224] [--devices 8 16]
         [--batch 16] [--text-len 64]

The devices are simulated CPU devices (`--xla_force_host_platform_device_count`); the mesh is `make_mesh(fsdp=n)`
(FSDP over every device, tensor parallelism off), the parameters placed by `paligemma.sharding`'s rules. Each program
is lowered from `jax.ShapeDtypeStruct`s with shardings (nothing is allocated) and compiled; XLA's
`memory_analysis()` of an SPMD program is per device. Inference: one forward pass over image + text (the prefill's
work) with bfloat16 weights and compute. Fine-tuning: the `train_step` of a full fine-tune, float32 weights and AdamW
state, bfloat16 compute, remat on, the train state donated. Prints a markdown table for bench/RESULTS.md.
"""
from __future__ import annotations
import argparse
import os
import sys
from pathlib import Path
import time

sys.path.insert(0, str(Path(__file__).parent))
from common import config_for  # noqa: E402

N_MAX = 16
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={N_MAX}"


def analyse(config_name: str, n: int, mode: str, batch: int, text_len: int) -> dict:
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from paligemma import PaliGemma
    from paligemma.finetune import make_optimizer, train_step
    from paligemma.sharding import batch_sharding, make_mesh, model_shardings
    mesh = make_mesh(fsdp=n, devices=jax.devices()[:n])
    c = config_for(config_name)
    train = mode == "fine-tune"
    config = c.replace(llm=c.llm.replace(remat=train), vit=c.vit.replace(remat=train))
    S, T = config.image_size, text_len

    def data_spec(shape, dtype):
        return jax.ShapeDtypeStruct(shape, dtype, sharding=batch_sharding(mesh, len(shape)))
    data = dict(images=data_spec((batch, S, S, 3), jnp.float32), tokens=data_spec((batch, T), jnp.int32),
                input_mask=data_spec((batch, T), bool), mask_ar=data_spec((batch, T), jnp.int32),
                loss_mask=data_spec((batch, T), jnp.int32))

    if train:
        def build():
            model = PaliGemma(config, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
            return model, make_optimizer(model, 1e-5, 1000, warmup=10)
        model, opt = nnx.eval_shape(build)
        graphdef, state = nnx.split((model, opt))
    else:
        model = nnx.eval_shape(lambda: PaliGemma(config, rngs=nnx.Rngs(0), dtype=jnp.bfloat16,
                                                 param_dtype=jnp.bfloat16))
        graphdef, state = nnx.split(model)
    shardings = model_shardings(state, mesh)
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), state, shardings)

    if train:
        def step(state, data):
            model, opt = nnx.merge(graphdef, state)
            loss, norm = train_step(model, opt, data)
            return nnx.state((model, opt)), loss
        fn = jax.jit(step, donate_argnums=0, out_shardings=(shardings, None))
        args = (abstract, data)
    else:
        def fwd(state, images, tokens, input_mask, mask_ar):
            return nnx.merge(graphdef, state)(images, tokens, input_mask, mask_ar)
        fn = jax.jit(fwd, out_shardings=batch_sharding(mesh, 3))
        args = (abstract, *(data[k] for k in ("images", "tokens", "input_mask", "mask_ar")))
    t = time.perf_counter()
    m = fn.lower(*args).compile().memory_analysis()
    params = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    total = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes
    return dict(config=config_name, devices=n, mode=mode, params=params, arguments=m.argument_size_in_bytes,
                temp=m.temp_size_in_bytes, total=total, compile_s=time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["paligemma-3b-224", "paligemma2-10b-448", "paligemma2-28b-224"])
    ap.add_argument("--devices", nargs="+", type=int, default=[8, 16])
    ap.add_argument("--modes", nargs="+", default=["inference", "fine-tune"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--text-len", type=int, default=64)
    a = ap.parse_args()
    gb = lambda b: f"{b / 2**30:.2f}"
    print(f"batch {a.batch}, {a.text_len} text tokens; FSDP over n devices; GiB per device (XLA memory analysis)\n")
    print("| config | mode | devices | all weights (GiB) | arguments / device | temporaries / device | total / device |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in a.configs:
        for mode in a.modes:
            for n in a.devices:
                r = analyse(name, n, mode, a.batch, a.text_len)
                print(f"| {name} | {mode} | {n} | {gb(r['params'])} | {gb(r['arguments'])} | {gb(r['temp'])} | "
                      f"{gb(r['total'])} |", flush=True)
                print(f"  compiled in {r['compile_s']:.0f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
