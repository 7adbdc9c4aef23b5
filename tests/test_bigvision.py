"Every big_vision reference checkpoint loads and reproduces big_vision's own outputs (float32, 1e-4); a checkpoint runs at another resolution with big_vision's resampled position embeddings."
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import scipy.ndimage
from flax import nnx

from paligemma import PaliGemma, PaliGemmaConfig, load_checkpoint, param_count, save_checkpoint
from paligemma.checkpoints import resample_posemb
from paligemma.formats.bigvision import NpzCheckpoint, checkpoint_arrays, config_from_record, config_from_shapes
from paligemma.testing import REFERENCE_CHECKPOINTS, load_reference, reference_config, reference_dir

CASES = ["pg1_tiny", "pg2_tiny", "pg2_tiny_qemb"]


INPUTS = ("image", "text", "input_mask", "mask_ar")
# `model(images, text, ...)` as one compiled program (run eagerly, each operation would compile on its own)
forward = nnx.jit(lambda model, *args: model(*args))


@nnx.jit
def outputs(model, *args):
    "Every output big_vision recorded, and `model(...)`'s, from one compiled program."
    emb, mask, positions = model.embed(*args)
    pre = model.llm.encode(emb, positions, mask)
    P = model.config.num_image_tokens
    return dict(zimg=model.embed_image(args[0]), text_logits=model.llm.embedder.decode(pre[:, P:]),
                text_logits_softcapped=model.llm.logits(pre[:, P:]), llm_pre_logits=pre,
                direct=model(*args))


@pytest.mark.parametrize("case", CASES)
def test_reference_outputs(case):
    ref = load_reference(case)
    config = config_from_record(ref["config"])
    assert config.llm.query_scale_value == pytest.approx(ref["config"]["llm"]["query_scale"])
    model = load_checkpoint(ref["path"] / "params.npz", config=config, dtype=jnp.float32)
    out = outputs(model, *[jnp.asarray(ref["inputs"][k]) for k in INPUTS])
    L = {k: np.asarray(v, np.float32) for k, v in ref["logits"].items()}
    valid = ref["inputs"]["input_mask"].astype(bool)
    full_valid = np.concatenate([np.ones((valid.shape[0], config.num_image_tokens), bool), valid], 1)
    diffs = {
        "zimg": np.abs(np.asarray(out["zimg"]) - L["zimg"]).max(),
        "text_logits": np.abs(np.asarray(out["text_logits"])[valid] - L["text_logits"][valid]).max(),
        "text_logits_softcapped": np.abs(np.asarray(out["text_logits_softcapped"])[valid]
                                         - L["text_logits_softcapped"][valid]).max(),
        "llm_pre_logits": np.abs(np.asarray(out["llm_pre_logits"])[full_valid] - L["llm_pre_logits"][full_valid]).max(),
        "model(...)": np.abs(np.asarray(out["direct"])[valid] - L["text_logits_softcapped"][valid]).max(),
    }
    print(case, {k: f"{v:.1e}" for k, v in diffs.items()})
    # a float32 tolerance on every backend: conftest.py pins float32 matmuls (a TPU's default bfloat16 pass, or a
    # GPU's TF32, rounds each operand to 8 or 11 significant bits)
    assert all(d < 1e-4 for d in diffs.values()), diffs


def test_inferred_config_pg1():
    "The PaliGemma 1 reference needs no config: everything is read off the file."
    ref = load_reference("pg1_tiny")
    assert load_checkpoint(ref["path"] / "params.npz").config == config_from_record(ref["config"])


def test_inferred_config_pg2_sizes():
    "A PaliGemma 2 file gives a Gemma 2 config with the right sizes (soft caps are family defaults)."
    ref = load_reference("pg2_tiny")
    inferred = load_checkpoint(ref["path"] / "params.npz").config
    expected = config_from_record(ref["config"])
    assert inferred.vit == expected.vit and inferred.image_size == expected.image_size
    assert inferred.llm.post_norms and inferred.llm.replace(attn_logits_softcap=5.0, final_logits_softcap=5.0) == expected.llm


@pytest.mark.parametrize("suffix,file_dtype", [(".f16.npz", np.float16), (".bf16.npz", ml_dtypes.bfloat16)])
def test_half_precision_files(tmp_path, suffix, file_dtype):
    "The .f16.npz / .bf16.npz variants (bfloat16 saved as void |V2, as big_vision does) load with their dtype."
    ref = load_reference("pg1_tiny")
    with np.load(ref["path"] / "params.npz") as z:
        arrays = {k: z[k].astype(file_dtype) for k in z.files}
    if file_dtype is ml_dtypes.bfloat16:
        arrays = {k: v.view(np.dtype("V2")) for k, v in arrays.items()}
    path = tmp_path / f"pt_56{suffix}"
    np.savez(path, **arrays)
    model = load_checkpoint(path)
    assert model.llm.embedder.input_embedding.dtype == jnp.dtype(file_dtype)
    x = ref["inputs"]
    logits = np.asarray(forward(model, *[jnp.asarray(x[k]) for k in INPUTS]))
    valid = x["input_mask"].astype(bool)
    diff = np.abs(logits[valid] - ref["logits"]["text_logits"][valid]).max()
    assert diff < (0.02 if file_dtype is np.float16 else 0.1), diff
    assert (logits[valid].argmax(-1) == ref["logits"]["text_argmax"][valid]).mean() > 0.9
    up = load_checkpoint(path, dtype=jnp.float32)
    assert up.llm.embedder.input_embedding.dtype == jnp.float32


@pytest.mark.parametrize("name", PaliGemmaConfig.names())
def test_every_preset_builds_abstractly(name):
    "Abstract construction allocates nothing; PaliGemma-3B-224 has exactly the official parameter count."
    model = nnx.eval_shape(lambda: PaliGemma(PaliGemmaConfig.from_name(name), rngs=nnx.Rngs(0)))
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(nnx.state(model)))
    if name == "paligemma-3b-224": assert param_count(model) == 2_923_335_408


@pytest.mark.parametrize("name", sorted(REFERENCE_CHECKPOINTS))
def test_reference_config_matches_checkpoint_shapes(name):
    "`reference_config` (big_vision's recorded hyperparameters) is the config `config_from_shapes` infers from the weights."
    ckpt = NpzCheckpoint(reference_dir() / "bigvision" / REFERENCE_CHECKPOINTS[name] / "params.npz")
    inferred, ours = config_from_shapes(ckpt.shapes), reference_config(name)
    # Shapes say everything but the soft caps: config_from_shapes takes Gemma 2's (50, 30) for a Gemma 2 layout,
    # the tiny checkpoint was written with 5.0 and 5.0 (its config.json; the logits tests prove those values).
    caps = dict(attn_logits_softcap=ours.llm.attn_logits_softcap, final_logits_softcap=ours.llm.final_logits_softcap)
    assert inferred.replace(llm=inferred.llm.replace(**caps)) == ours
    assert (ours.llm.attn_logits_softcap is None) == (not ours.llm.post_norms)  # Gemma 1 has none, Gemma 2 both


def test_reference_config_rejects_unknown_name():
    with pytest.raises(ValueError, match="paligemma-tiny"): reference_config("paligemma-7b")


def big_vision_resample_posemb(old, new_tokens):
    "big_vision's `resample_posemb` (models/vit.py), the same calls: the grid resized by scipy.ndimage.zoom, order 1."
    gs_old, gs_new = int(np.sqrt(old.shape[1])), int(np.sqrt(new_tokens))
    grid = old.reshape(gs_old, gs_old, -1)
    grid = scipy.ndimage.zoom(grid, (gs_new / gs_old, gs_new / gs_old, 1), order=1)
    return grid.reshape(1, gs_new * gs_new, -1)


@pytest.mark.parametrize("case", ["pg1_tiny", "pg2_tiny"])
@pytest.mark.parametrize("grid", [1, 2, 3, 6, 8, 16, 32, 64])
def test_resample_posemb_is_big_vision_s(case, grid):
    "On the reference checkpoints' own embeddings (4 x 4), every grid size: equal to within float32 rounding."
    with np.load(reference_dir() / "bigvision" / case / "params.npz") as z:
        posemb = np.asarray(z["params/img/pos_embedding"])
    posemb = posemb.view(ml_dtypes.bfloat16).astype(np.float32) if posemb.dtype.kind == "V" else posemb
    ours, theirs = resample_posemb(posemb, grid), big_vision_resample_posemb(posemb, grid * grid)
    assert ours.shape == theirs.shape == (1, grid * grid, posemb.shape[-1]) and ours.dtype == np.float32
    # both interpolate in float64 and round to float32; summed in another order, a value may round the other way
    # (a convex combination: |value| <= max |posemb|, so one rounding step is at most that times 2^-23)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=np.abs(posemb).max() * 2.0 ** -23)


@pytest.mark.parametrize("image_size", [84, 112])
def test_checkpoint_runs_at_another_image_size(tmp_path, image_size):
    "pg1_tiny (56 px) loaded at another size, from its .npz and from a Hugging Face copy: big_vision's resampled posemb, every other array the file's, and it runs."
    ref = load_reference("pg1_tiny")
    path = ref["path"] / "params.npz"
    native = checkpoint_arrays(load_checkpoint(path))
    folder = save_checkpoint(load_checkpoint(path), tmp_path / "hf")
    grid = image_size // 14
    for source in (path, folder):
        model = load_checkpoint(source, image_size=image_size)
        assert model.config == reference_config("paligemma-tiny").replace(image_size=image_size)
        got = checkpoint_arrays(model)
        theirs = big_vision_resample_posemb(native["img/pos_embedding"], grid * grid)
        np.testing.assert_allclose(got["img/pos_embedding"], theirs, rtol=0, atol=np.abs(theirs).max() * 2.0 ** -23)
        assert all(np.array_equal(got[k], native[k]) for k in native if k != "img/pos_embedding")
        x = ref["inputs"]
        images = jax.image.resize(jnp.asarray(x["image"]), (2, image_size, image_size, 3), "bilinear")
        logits = forward(model, images, *[jnp.asarray(x[k]) for k in INPUTS[1:]])
        assert logits.shape == (2, 12, 1000) and np.isfinite(np.asarray(logits)).all()
