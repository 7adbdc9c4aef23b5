"""Install this repository in Colab with its `notebooks` extra, keeping the runtime's own jax.

Colab's TPU and GPU runtimes come with a jax built for their accelerator. A plain `pip install` of a package that
asks for `jax>=...` could replace it with the CPU build from the package index, so this script pins every jax
package already installed (jax, jaxlib, libtpu, the CUDA plugins) with a pip constraints file: pip then installs
everything else and leaves jax as it is, or stops with a clear conflict when the runtime's jax is too old.
"""
import importlib.metadata
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JAX_PACKAGES = ("jax", "jaxlib", "libtpu", "libtpu-nightly", "jax-cuda12-plugin", "jax-cuda12-pjrt",
                "jax-cuda13-plugin", "jax-cuda13-pjrt")


def installed_jax() -> list[str]:
    "Pins `name==version` for each jax package this runtime already has."
    pins = []
    for name in JAX_PACKAGES:
        try: pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError: pass
    return pins


def main() -> None:
    pins = installed_jax()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(pins) + "\n")
    print("keeping the runtime's", ", ".join(pins) or "(no jax installed: pip installs the CPU build)")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "-c", f.name, "-e", f"{ROOT}[notebooks]"]
    if subprocess.run(cmd).returncode != 0:
        sys.exit("pip could not install paligemma beside this runtime's jax (see above): if it says the runtime's "
                 "jax is too old, upgrade it for this accelerator first (e.g. pip install -U 'jax[tpu]') and rerun")


if __name__ == "__main__":
    main()
