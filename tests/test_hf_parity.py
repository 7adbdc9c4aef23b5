"Our PaliGemma against Hugging Face transformers' PaliGemmaForConditionalGeneration on the same random weights."
import numpy as np
import jax.numpy as jnp
import pytest
from flax import nnx

from paligemma import CheckpointError
from paligemma.formats.hf import config_from_hf, model_from_hf, normalize_hf_key, params_from_hf
from hf_utils import batch_with_padding, hf_logits, hf_random_model, hf_state_numpy, hf_tiny_config, to_hub_layout


# run eagerly, each operation of a forward pass would compile on its own: one compiled program per model instead
forward = nnx.jit(lambda model, *args: model(*args))


@nnx.jit
def capped_logits(model, *args):
    "The decoder's final (soft-capped) logits at every position, through `embed` and `encode`."
    x, mask, positions = model.embed(*args)
    return model.llm.logits(model.llm.encode(x, positions, mask))


@pytest.fixture(scope="module")
def hf_pg1():
    return hf_random_model(hf_tiny_config())


def test_config_from_hf(hf_pg1):
    cfg = config_from_hf(hf_pg1.config.to_dict())
    assert (cfg.image_size, cfg.num_image_tokens) == (42, 9)
    assert (cfg.vit.width, cfg.vit.depth, cfg.vit.mlp_dim, cfg.vit.num_heads) == (40, 2, 72, 4)
    llm = cfg.llm
    assert (llm.vocab_size, llm.width, llm.depth, llm.mlp_dim, llm.num_heads, llm.num_kv_heads, llm.head_dim) == (
        211, 64, 3, 96, 4, 1, 24)
    assert not llm.post_norms and llm.attn_logits_softcap is None


def layout(config, stack):
    "`config` with its decoder layers stacked (True), a list (False) or the backend's default (None)."
    return config.replace(llm=config.llm.replace(stack_layers=stack))


@pytest.mark.parametrize("stack", [True, False])
def test_logits_match_transformers(hf_pg1, stack):
    "Batch of 3 with different lengths, padding and prefix/suffix splits; MQA; float32; both layer layouts."
    config = layout(config_from_hf(hf_pg1.config.to_dict()), stack)
    model = model_from_hf(hf_state_numpy(hf_pg1), config)
    images, tokens, input_mask, mask_ar = batch_with_padding(hf_pg1.config)
    ours = np.asarray(forward(model, *map(jnp.asarray, (images, tokens, input_mask, mask_ar))))
    theirs = hf_logits(hf_pg1, images, tokens, input_mask, mask_ar)
    valid = input_mask
    diff = np.abs(ours[valid] - theirs[valid]).max()
    print(f"max |ours - transformers| over real tokens: {diff:.2e} (logit scale {np.abs(theirs[valid]).max():.1f})")
    assert diff < 1e-4
    np.testing.assert_array_equal(ours[valid].argmax(-1), theirs[valid].argmax(-1))


def test_image_embeddings_match_transformers(hf_pg1):
    import torch
    config = config_from_hf(hf_pg1.config.to_dict())
    model = model_from_hf(hf_state_numpy(hf_pg1), config)
    images = batch_with_padding(hf_pg1.config)[0]
    with torch.no_grad():
        theirs = hf_pg1.model.get_image_features(torch.tensor(images.transpose(0, 3, 1, 2))).pooler_output.numpy()
    ours = np.asarray(nnx.jit(lambda m, x: m.embed_image(x))(model, jnp.asarray(images)))
    assert ours.shape == theirs.shape == (3, 9, 64)
    assert np.abs(ours - theirs).max() < 1e-4


def test_both_key_generations_map_alike(hf_pg1):
    "transformers 4.x hub names (vision_tower.vision_model.*, language_model.model.*) map like 5.x's."
    state = hf_state_numpy(hf_pg1)
    old = to_hub_layout(state)
    assert "language_model.model.layers.0.self_attn.q_proj.weight" in old
    assert normalize_hf_key("language_model.lm_head.weight") == "lm_head.weight"
    config = config_from_hf(hf_pg1.config.to_dict())
    a, b = params_from_hf(state, config), params_from_hf(old, config)
    assert sorted(a) == sorted(b)
    for k in a: np.testing.assert_array_equal(a[k], b[k])


def test_bad_hf_state_dicts(hf_pg1):
    config = config_from_hf(hf_pg1.config.to_dict())
    state = hf_state_numpy(hf_pg1)
    with pytest.raises(CheckpointError, match="unexpected 1 Hugging Face key.*model.language_model.extra.weight"):
        params_from_hf({**state, "model.language_model.extra.weight": np.zeros(3)}, config)
    missing = {k: v for k, v in state.items() if k != "model.language_model.norm.weight"}
    with pytest.raises(CheckpointError, match="missing 1 key.*llm/final_norm/scale"):
        model_from_hf(missing, config)
    wrong = config.replace(llm=config.llm.replace(mlp_dim=100))
    with pytest.raises(CheckpointError, match=r"llm/layers/mlp/linear/w: file has \(3, 96, 64\), model expects \(3, 100, 64\)"):
        model_from_hf(state, wrong)
    gap = {k: v for k, v in state.items() if ".layers.1." not in k or "vision" in k}
    with pytest.raises(CheckpointError, match="not numbered"):
        params_from_hf(gap, config)


@pytest.mark.parametrize("stack", [True, False])
def test_gemma2_logits_match_transformers(stack):
    "PaliGemma 2 decoder (post-norms, GQA, both soft caps) against transformers, final soft cap applied on ours."
    hf = hf_random_model(hf_tiny_config(gemma2=True))
    config = layout(config_from_hf(hf.config.to_dict()), stack)
    assert config.llm.post_norms and config.llm.num_kv_heads == 2
    assert (config.llm.attn_logits_softcap, config.llm.final_logits_softcap) == (5.0, 7.0)
    model = model_from_hf(hf_state_numpy(hf), config)
    images, tokens, input_mask, mask_ar = batch_with_padding(hf.config)
    assert isinstance(model.llm.layers, nnx.List) != stack
    batch = tuple(map(jnp.asarray, (images, tokens, input_mask, mask_ar)))
    ours = np.asarray(capped_logits(model, *batch))[:, config.num_image_tokens:]
    theirs = hf_logits(hf, images, tokens, input_mask, mask_ar)
    assert np.abs(ours[input_mask] - theirs[input_mask]).max() < 1e-4


@pytest.mark.parametrize("stack", [True, False])
def test_gemma2_sliding_window_matches_transformers(stack):
    "Sequences longer than a window of 5 on layers 0 and 2: our windowed forward equals transformers'."
    hf_cfg = hf_tiny_config(gemma2=True)
    hf_cfg.text_config.sliding_window = 5
    hf_cfg.text_config.layer_types = ["sliding_attention", "full_attention", "sliding_attention"]
    hf = hf_random_model(hf_cfg)
    config = layout(config_from_hf(hf.config.to_dict()), stack)
    assert config.llm.sliding_window == 5 and config.llm.local_layers == (True, False, True)
    model = model_from_hf(hf_state_numpy(hf), config)
    images, tokens, input_mask, mask_ar = batch_with_padding(hf.config, lengths=(14, 6, 16), prefix_lengths=(3, 2, 9))
    assert isinstance(model.llm.layers, nnx.List) != stack
    batch = tuple(map(jnp.asarray, (images, tokens, input_mask, mask_ar)))
    ours = np.asarray(capped_logits(model, *batch))[:, config.num_image_tokens:]
    theirs = hf_logits(hf, images, tokens, input_mask, mask_ar)
    assert np.abs(ours[input_mask] - theirs[input_mask]).max() < 1e-4
    unwindowed = model_from_hf(hf_state_numpy(hf), config.replace(llm=config.llm.replace(sliding_window=None)))
    plain = np.asarray(capped_logits(unwindowed, *batch))
    assert np.abs(plain[:, config.num_image_tokens:][input_mask] - theirs[input_mask]).max() > 1e-2  # the window matters


def test_load_hub_layout_sharded_safetensors(hf_pg1, tmp_path):
    "The official hub layout (transformers 4.x names, explicit lm_head, embedding padded by 64 rows), in 2 shards."
    import json
    from safetensors.numpy import save_file
    from paligemma import load_checkpoint
    old = to_hub_layout(hf_state_numpy(hf_pg1))
    emb = old["language_model.model.embed_tokens.weight"]
    padded = np.concatenate([emb, np.zeros((64, emb.shape[1]), emb.dtype)])
    old["language_model.model.embed_tokens.weight"] = old["language_model.lm_head.weight"] = padded
    keys = sorted(old)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for name, ks in shards.items(): save_file({k: old[k] for k in ks}, str(tmp_path / name))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: name for name, ks in shards.items() for k in ks}}))
    cfg = hf_pg1.config.to_dict()
    cfg["text_config"]["vocab_size"] = padded.shape[0]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    model = load_checkpoint(tmp_path)
    assert model.config.llm.vocab_size == emb.shape[0] + 64
    images, tokens, input_mask, mask_ar = batch_with_padding(hf_pg1.config)
    ours = np.asarray(forward(model, *map(jnp.asarray, (images, tokens, input_mask, mask_ar))))
    theirs = hf_logits(hf_pg1, images, tokens, input_mask, mask_ar)
    assert np.abs(ours[input_mask][:, :emb.shape[0]] - theirs[input_mask]).max() < 1e-4


def test_load_pg2_safetensors_bf16(tmp_path):
    "A PaliGemma 2 checkpoint saved by transformers in bfloat16 loads with its dtype and its window."
    import torch
    from paligemma import load_checkpoint
    hf_cfg = hf_tiny_config(gemma2=True)
    hf_cfg.text_config.sliding_window = 5
    hf = hf_random_model(hf_cfg).to(torch.bfloat16)
    hf.save_pretrained(tmp_path)
    model = load_checkpoint(tmp_path)
    assert model.llm.embedder.input_embedding.dtype == jnp.bfloat16
    assert model.config.llm.sliding_window == 5 and model.config.llm.post_norms
    ref = model_from_hf({k: v.float().numpy() for k, v in hf.state_dict().items()}, model.config)
    for (path, a), (_, b) in zip(sorted(nnx_flat(model).items()), sorted(nnx_flat(ref).items())):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32), err_msg=path)


def nnx_flat(model):
    from flax import nnx
    return {"/".join(map(str, k)): v[...] for k, v in nnx.to_flat_state(nnx.state(model))}
