"A folder written by `save_checkpoint` against transformers: the names, shapes and dtypes its `save_pretrained` writes, and the same logits once it loads the folder."
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from safetensors import safe_open
from transformers import PaliGemmaConfig as HFConfig, PaliGemmaForConditionalGeneration

from paligemma.formats.hf import config_to_hf
from paligemma.model import PaliGemma
from paligemma.saving import save_checkpoint
from paligemma.testing import reference_config


def hf_logits(folder, imgs, toks, P):
    "transformers' text logits for `toks` after P image tokens, from the model it loads out of `folder`."
    hf_model = PaliGemmaForConditionalGeneration.from_pretrained(folder).eval()
    assert str(hf_model.dtype) == "torch.float32"
    ids = torch.tensor(np.concatenate([np.full((len(toks), P), hf_model.config.image_token_id), toks], 1))
    with torch.no_grad():
        out = hf_model(input_ids=ids, pixel_values=torch.tensor(imgs.transpose(0, 3, 1, 2)),
                       token_type_ids=torch.zeros_like(ids)).logits
    return out[:, P:].numpy()


@pytest.mark.parametrize("name", ["paligemma-tiny", "paligemma2-tiny"])
def test_saved_folder_is_what_transformers_writes_and_reads(name, tmp_path):
    cfg = reference_config(name)
    model = PaliGemma(cfg, rngs=nnx.Rngs(0))
    folder = save_checkpoint(model, tmp_path / "ours")
    theirs_folder = tmp_path / "save_pretrained"
    PaliGemmaForConditionalGeneration(HFConfig(**config_to_hf(cfg))).save_pretrained(theirs_folder)
    with safe_open(str(folder / "model.safetensors"), "np") as ours_f, \
         safe_open(str(theirs_folder / "model.safetensors"), "np") as theirs_f:
        assert sorted(ours_f.keys()) == sorted(theirs_f.keys())
        for k in theirs_f.keys():
            assert (ours_f.get_slice(k).get_shape(), ours_f.get_slice(k).get_dtype()) == \
                   (theirs_f.get_slice(k).get_shape(), theirs_f.get_slice(k).get_dtype()), k
        assert ours_f.metadata() == theirs_f.metadata()

    rng = np.random.default_rng(0)
    imgs = rng.uniform(-1, 1, (2, cfg.image_size, cfg.image_size, 3)).astype(np.float32)
    toks = rng.integers(2, cfg.llm.vocab_size, (2, 7))
    P = cfg.num_image_tokens
    theirs = hf_logits(folder, imgs, toks, P)
    x, mask, pos = model.embed(jnp.asarray(imgs), jnp.asarray(toks))
    ours = np.asarray(model.llm.logits(model.llm.encode(x, pos, mask)))[:, P:]
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
