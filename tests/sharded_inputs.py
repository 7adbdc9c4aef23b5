"What the sharded checks (`sharding_check.py`, `multihost_check.py`) share; importing it starts nothing in JAX."
import numpy as np
from flax import nnx

from paligemma.testing import reference_dir

B = 8  # the reference batch of 2, tiled: divisible by data x fsdp on every mesh, and by 2 processes


def inputs(case: str) -> dict:
    "A big_vision reference case's inputs, tiled to `B` examples, under the names `train_step` reads."
    with np.load(reference_dir() / "bigvision" / case / "inputs.npz") as z:
        x = {k: np.concatenate([z[k]] * (B // len(z[k]))) for k in z.files}
    return dict(images=x["image"], tokens=x["text"], input_mask=x["input_mask"], mask_ar=x["mask_ar"],
                loss_mask=x["mask_loss"])


def params(model) -> dict:
    "Every parameter by its path."
    return {"/".join(map(str, k)): v.get_value() for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def per_layer(flat: dict) -> dict:
    "Arrays by path with stacked layers split into `layers/<i>/...`, so that both layer layouts compare key by key."
    out = {}
    for k, v in flat.items():
        head, sep, tail = k.partition("/layers/")
        if sep and not tail.split("/")[0].isdigit():
            out.update({f"{head}/layers/{i}/{tail}": v[i] for i in range(len(v))})
        else: out[k] = v
    return out
