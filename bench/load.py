"""Peak memory and time of `load_checkpoint` on a full-size PaliGemma-3B-224 checkpoint (synthetic weights).

    python bench/load.py [--dir /tmp/paligemma_load_bench] [--keep]

Writes big_vision `.npz` files in float32 and bfloat16, tensor by tensor (constant values: the loader's cost does not
depend on them), then loads each in a fresh Python process and reports wall time and peak RSS (`VmHWM`) against the
bytes of the loaded parameters. The target is a peak under 1.3x the parameter bytes.
"""
from __future__ import annotations
import argparse, json, subprocess, sys, time
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import config_for  # noqa: E402


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"): return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def write(path: Path, dtype: str, config_name: str) -> int:
    import jax.numpy as jnp
    from flax import nnx
    from paligemma.formats.bigvision import abstract_model, bigvision_name, write_npz
    np_dtype = np.dtype(jnp.dtype(dtype))
    state = nnx.to_flat_state(nnx.state(abstract_model(config_for(config_name))))
    shapes = sorted((bigvision_name("/".join(map(str, k))), tuple(v.get_value().shape)) for k, v in state)
    write_npz(path, ((name, np.full(shape, 0.01, np_dtype)) for name, shape in shapes))
    return sum(int(np.prod(s)) for _, s in shapes)


def child(path: str, dtype: str | None) -> None:
    import jax
    from paligemma.checkpoints import load_checkpoint
    base = peak_rss()
    t = time.perf_counter()
    model = load_checkpoint(path, dtype=dtype)
    jax.block_until_ready(jax.tree.leaves(nnx_state(model)))
    wall = time.perf_counter() - t
    nbytes = sum(x.nbytes for x in jax.tree.leaves(nnx_state(model)))
    print(json.dumps(dict(wall_s=wall, peak_rss=peak_rss(), rss_before=base, param_bytes=nbytes)))


def nnx_state(model):
    from flax import nnx
    return nnx.state(model)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default="/tmp/paligemma_load_bench")
    p.add_argument("--config", default="paligemma-3b-224")
    p.add_argument("--keep", action="store_true", help="keep the synthetic checkpoints")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child: return child(a.child[0], None if a.child[1] == "None" else a.child[1])
    folder = Path(a.dir); folder.mkdir(parents=True, exist_ok=True)
    files = {"float32": folder / "pt_224.npz", "bfloat16": folder / "pt_224.bf16.npz"}
    try:
        for dtype, path in files.items():
            t = time.perf_counter()
            n = write(path, dtype, a.config)
            print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB, {n / 1e9:.3f}B parameters) "
                  f"in {time.perf_counter() - t:.0f} s", flush=True)
        print(f"{'file':>16} {'load dtype':>10} {'params GB':>9} {'peak RSS GB':>11} {'ratio':>5} {'time s':>6}")
        for dtype, path in files.items():
            for load_dtype in ([None, "bfloat16"] if dtype == "float32" else [None]):
                out = subprocess.run([sys.executable, __file__, "--child", str(path), str(load_dtype)],
                                     capture_output=True, text=True)
                if out.returncode: print(out.stderr[-3000:]); continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{dtype:>16} {str(load_dtype or 'file'):>10} {r['param_bytes'] / 1e9:9.2f} "
                      f"{r['peak_rss'] / 1e9:11.2f} {r['peak_rss'] / r['param_bytes']:5.2f} {r['wall_s']:6.1f}",
                      flush=True)
    finally:
        if not a.keep:
            for path in files.values(): path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
