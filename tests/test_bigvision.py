"Every big_vision reference checkpoint loads and reproduces big_vision's own outputs (float32, 1e-4)."
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

from paligemma import GemmaConfig, PaliGemma, PaliGemmaConfig, ViTConfig, load_checkpoint, param_count
from paligemma.testing import load_reference, reference_dir

CASES = ["pg1_tiny", "pg2_tiny", "pg2_tiny_qemb"]


def config_from_reference(cfg: dict) -> PaliGemmaConfig:
    "Our config from the hyperparameters big_vision recorded in the reference's config.json."
    v, l = cfg["vit"], cfg["llm"]
    vit = ViTConfig(width=v["width"], depth=v["depth"], mlp_dim=v["mlp_dim"], num_heads=v["num_heads"],
                    patch_size=v["patch_size"][0])
    query_scale = {"rsqrt_head_dim": "head_dim", "rsqrt_emb_per_head": "width_over_heads"}[l["query_pre_attn_norm"]]
    llm = GemmaConfig(vocab_size=l["vocab_size"], width=l["width"], depth=l["depth"], mlp_dim=l["mlp_dim"],
                      num_heads=l["num_heads"], num_kv_heads=l["num_kv_heads"], head_dim=l["head_dim"],
                      query_scale=query_scale, post_norms=l["post_norms"],
                      attn_logits_softcap=l["attn_logits_softcap"] or None,
                      final_logits_softcap=l["final_logits_softcap"] or None)
    return PaliGemmaConfig(vit, llm, cfg["image"]["height"])


def run(model, ref):
    x = ref["inputs"]
    args = [jnp.asarray(x[k]) for k in ("image", "text", "input_mask", "mask_ar")]
    emb, mask, positions = model.embed(*args)
    pre = model.llm.encode(emb, positions, mask)
    P = model.config.num_image_tokens
    return dict(zimg=model.embed_image(args[0]), text_logits=model.llm.embedder.decode(pre[:, P:]),
                text_logits_softcapped=model.llm.logits(pre[:, P:]), llm_pre_logits=pre,
                direct=model(*args))


@pytest.mark.parametrize("case", CASES)
def test_reference_outputs(case):
    ref = load_reference(case)
    config = config_from_reference(ref["config"])
    assert config.llm.query_scale_value == pytest.approx(ref["config"]["llm"]["query_scale"])
    model = load_checkpoint(ref["path"] / "params.npz", config=config, dtype=jnp.float32)
    out = run(model, ref)
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
    assert load_checkpoint(ref["path"] / "params.npz").config == config_from_reference(ref["config"])


def test_inferred_config_pg2_sizes():
    "A PaliGemma 2 file gives a Gemma 2 config with the right sizes (soft caps are family defaults)."
    ref = load_reference("pg2_tiny")
    inferred = load_checkpoint(ref["path"] / "params.npz").config
    expected = config_from_reference(ref["config"])
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
    logits = np.asarray(model(*[jnp.asarray(x[k]) for k in ("image", "text", "input_mask", "mask_ar")]))
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
