"A checkpoint written by transformers' own `save_pretrained` loads with `load_checkpoint` and gives transformers' logits (moved here from nbs/16_checkpoints.ipynb, which imports neither torch nor transformers)."
import numpy as np
import jax.numpy as jnp
import pytest
import torch
from transformers import PaliGemmaConfig as HFConfig, PaliGemmaForConditionalGeneration

from paligemma import load_checkpoint
from paligemma import CheckpointError
from paligemma.testing import reference_config
from paligemma.formats.hf import config_to_hf


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    "transformers' PaliGemma 2 of our `paligemma2-tiny` shape, random weights, written by `save_pretrained`."
    torch.manual_seed(0)
    hf = PaliGemmaForConditionalGeneration(HFConfig(**config_to_hf(reference_config("paligemma2-tiny")))).eval()
    with torch.no_grad():
        for p in hf.parameters(): p.copy_(torch.randn_like(p) * 0.1)
    folder = tmp_path_factory.mktemp("hf") / "saved"
    hf.save_pretrained(folder)
    return hf, folder


def test_save_pretrained_folder_gives_transformers_logits(saved):
    hf, folder = saved
    assert {"config.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}
    loaded = load_checkpoint(folder)
    assert loaded.config == reference_config("paligemma2-tiny")
    imgs = np.random.default_rng(0).uniform(-1, 1, (1, 42, 42, 3)).astype(np.float32)
    toks = np.array([[2, 7, 9, 11, 5]])
    P = loaded.config.num_image_tokens
    ids = torch.tensor(np.r_[np.full(P, hf.config.image_token_id), toks[0]][None])
    with torch.no_grad():
        theirs = hf(input_ids=ids, pixel_values=torch.tensor(imgs.transpose(0, 3, 1, 2)),
                    token_type_ids=torch.zeros_like(ids)).logits[:, P:].numpy()
    x, mask, pos = loaded.embed(jnp.asarray(imgs), jnp.asarray(toks))
    ours = np.asarray(loaded.llm.logits(loaded.llm.encode(x, pos, mask)))[:, P:]
    print(f"max |ours - transformers| {np.abs(ours - theirs).max():.1e}")
    assert np.abs(ours - theirs).max() < 1e-4
    np.testing.assert_array_equal(ours.argmax(-1), theirs.argmax(-1))


def test_save_pretrained_folder_with_the_wrong_config(saved):
    "PaliGemma 2 weights forced into a PaliGemma 1 config: the Gemma 2 norms it has no place for are named."
    _, folder = saved
    with pytest.raises(CheckpointError, match="unexpected 4 Hugging Face key.*post_feedforward_layernorm"):
        load_checkpoint(folder, config=reference_config("paligemma-tiny"))
