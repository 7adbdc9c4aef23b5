"""Sowing (`paligemma.sow`): what both towers record, checked against transformers' own attentions, hidden
states and hooked MLP activations on the same random weights; recording changes no output bit and costs nothing off."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from paligemma.formats.hf import config_from_hf, model_from_hf
from paligemma.sow import RecordingSampler, SowConfig, recorded_forward
from paligemma.model import make_attn_mask
from paligemma.sampler import Sampler
from hf_utils import batch_with_padding, hf_inputs, hf_random_model, hf_state_numpy, hf_tiny_config

EVERYTHING = SowConfig(residuals=True, attention=True, mlp=True, logits_topk=5)


_PAIRS = {}


def make_pair(gemma2: bool):
    "transformers' model (eager attention, which can return its weights) and ours on the same random weights."
    if gemma2 not in _PAIRS:
        hf = hf_random_model(hf_tiny_config(gemma2=gemma2))
        _PAIRS[gemma2] = hf, model_from_hf(hf_state_numpy(hf), config_from_hf(hf.config.to_dict()))
    return _PAIRS[gemma2]


@pytest.fixture(scope="module", params=[False, True], ids=["paligemma1", "paligemma2"])
def pair(request):
    return make_pair(request.param)


@pytest.fixture(scope="module")
def pg1():
    "PaliGemma 1 only, for the slowest check (the per-token path is the same code for both)."
    return make_pair(False)


@pytest.fixture(scope="module")
def batch(pair):
    return batch_with_padding(pair[0].config)


def ours_recorded(model, batch, config=EVERYTHING):
    logits, rec = recorded_forward(model, config, *map(jnp.asarray, batch))
    return np.asarray(logits), {k: np.asarray(v) for k, v in rec.items()}


def theirs_recorded(hf, batch):
    "transformers' attentions and hidden states, and the MLP hidden activations as the inputs of the down projections."
    mlp = {"llm": [], "img": []}
    hooks = [layer.mlp.down_proj.register_forward_hook(lambda m, a, o: mlp["llm"].append(a[0].numpy()))
             for layer in hf.model.language_model.layers]
    hooks += [layer.mlp.fc2.register_forward_hook(lambda m, a, o: mlp["img"].append(a[0].numpy()))
              for layer in hf.model.vision_tower.encoder.layers]
    P, inputs = hf_inputs(hf, *batch)
    try:
        with torch.no_grad():
            out = hf(**inputs, output_attentions=True, output_hidden_states=True)
            mlp["img"].clear()  # the vision tower runs again below, alone
            vis = hf.model.vision_tower(inputs["pixel_values"], output_attentions=True, output_hidden_states=True)
    finally:
        for h in hooks: h.remove()
    return dict(llm_attn=np.stack([a.numpy() for a in out.attentions]),  # [L, B, N, T, S]
                llm_hidden=np.stack([h.numpy() for h in out.hidden_states]),  # inputs, blocks 1..L-1, normed last
                llm_mlp=np.stack(mlp["llm"]), img_attn=np.stack([a.numpy() for a in vis.attentions]),
                img_hidden=np.stack([h.numpy() for h in vis.hidden_states]), img_mlp=np.stack(mlp["img"]))


def close(a, b, tol=1e-4):
    "Max abs difference relative to the larger magnitude."
    scale = max(np.abs(b).max(), 1e-6)
    return np.abs(a - b).max() / scale < tol


def test_records_match_transformers(pair, batch):
    hf, model = pair
    _, ours = ours_recorded(model, batch)
    theirs = theirs_recorded(hf, batch)
    P = model.config.num_image_tokens
    real = np.concatenate([np.ones((len(batch[1]), P), bool), batch[2]], axis=1)  # [B, P + T] real query rows
    # decoder attention: ours [L, B, T, N, S], theirs [L, B, N, T, S]; padded query rows are meaningless in both
    a, b = ours["llm.layers.attn.weights"], theirs["llm_attn"].transpose(0, 1, 3, 2, 4)
    assert a.shape == b.shape
    assert np.abs(a[:, real] - b[:, real]).max() < 1e-5
    # residual stream: theirs holds the input and blocks 1..L-1 as they are, and the last block's output normed
    res = ours["llm.residuals"]
    assert res.shape[0] == model.config.llm.depth + 1
    assert close(res[:-1][:, real], theirs["llm_hidden"][:-1][:, real])
    normed = np.asarray(model.llm.final_norm(jnp.asarray(res[-1])))
    assert close(normed[real], theirs["llm_hidden"][-1][real])
    assert close(ours["llm.layers.mlp.hidden"][:, real], theirs["llm_mlp"][:, real])
    # the vision tower: attention, residual stream (embeddings, then every block), MLP hidden activations
    assert np.abs(ours["img.layers.attn.weights"] - theirs["img_attn"].transpose(0, 1, 3, 2, 4)).max() < 1e-5
    assert close(ours["img.residuals"], theirs["img_hidden"])
    assert close(ours["img.layers.mlp.hidden"], theirs["img_mlp"])


def test_logit_lens_matches_transformers(pair, batch):
    "The lens of block l's output is transformers' hidden state l through its final norm and lm_head."
    hf, model = pair
    _, ours = ours_recorded(model, batch)
    theirs = theirs_recorded(hf, batch)
    P = model.config.num_image_tokens
    real = np.concatenate([np.ones((len(batch[1]), P), bool), batch[2]], axis=1)
    with torch.no_grad():
        h = torch.tensor(theirs["llm_hidden"][:-1])
        lens = hf.lm_head(hf.model.language_model.norm(h)).numpy()  # [L, B, T, V], raw (no final soft cap)
    values, tokens = ours["llm.lens_logits"], ours["llm.lens_tokens"]
    top = np.sort(lens, axis=-1)[..., ::-1][..., :5]
    assert close(values[:-1][:, real], top[:, real])
    picked = np.take_along_axis(lens, tokens[:-1].astype(np.int64), axis=-1)  # their logits at our top-5 ids
    assert close(picked[:, real], top[:, real])


def test_attention_sums_to_one_over_visible_keys_and_is_zero_on_masked(pair, batch):
    _, model = pair
    _, ours = ours_recorded(model, batch, SowConfig(attention=True))
    images, tokens, input_mask, mask_ar = batch
    P, B = model.config.num_image_tokens, len(tokens)
    full_input = np.concatenate([np.ones((B, P), bool), input_mask], axis=1)
    full_ar = np.concatenate([np.zeros((B, P), np.int32), mask_ar], axis=1)
    mask = np.asarray(make_attn_mask(full_input, full_ar))  # [B, T, S]
    w = ours["llm.layers.attn.weights"]  # [L, B, T, N, S]
    real = full_input
    assert np.abs(w.sum(-1)[:, real] - 1).max() < 1e-5
    hidden = ~mask[None, :, :, None, :] & real[None, :, :, None, None]
    assert (w[np.broadcast_to(hidden, w.shape)] == 0).all()  # masked keys get exactly nothing
    # the prefix-LM mask in action: a prefix token attends to later prefix tokens, never to the suffix
    assert w[:, 0, P, :, P + 1].min() > 0 and (w[:, 0, P, :, P + 3:] == 0).all()
    v = ours["img.layers.attn.weights"]
    assert np.abs(v.sum(-1) - 1).max() < 1e-5 and v.min() > 0  # the ViT attends everywhere


def test_recording_changes_no_output_bit(pair, batch):
    _, model = pair
    plain = np.asarray(model(*map(jnp.asarray, batch)))
    recorded, _ = ours_recorded(model, batch)
    np.testing.assert_array_equal(plain, recorded)
    images, tokens, input_mask, _ = batch
    sampler = Sampler(model)
    args = (images, tokens, input_mask.sum(1), 6)
    off = sampler.generate_tokens(*args, eos_id=None, return_logits=True)
    assert not hasattr(off, "sown")
    on = RecordingSampler(model, config=EVERYTHING).generate_tokens(*args, eos_id=None, return_logits=True)
    assert set(on.sown) == {"prefix", "tokens"}
    for field in ("tokens", "lengths", "logprobs", "logits"):
        np.testing.assert_array_equal(np.asarray(getattr(off, field)), np.asarray(getattr(on, field)), err_msg=field)


def test_recording_off_traces_the_same_program(pair, batch):
    _, model = pair
    args = tuple(map(jnp.asarray, batch))

    def jaxpr(config=None):  # of the forward pass, plain or as a user reads the records
        g, s = nnx.split(model)
        run = (lambda m, *a: m(*a)) if config is None else (lambda m, *a: recorded_forward(m, config, *a)[0])
        return str(jax.make_jaxpr(lambda s, *a: run(nnx.merge(g, s), *a))(s, *args))

    before = jaxpr()
    on = jaxpr(EVERYTHING)
    after = jaxpr(SowConfig())  # a config recording nothing is off
    assert after == before and len(on) > len(before)


def test_sampler_records_per_token_equal_the_forward_pass(pg1):
    """Token j's records from the sampler are the full forward pass's records at the position that chose token j.
    The generation is `test_recording_changes_no_output_bit`'s (same batch, length, records), whose compiled programs
    the shared compilation cache holds."""
    hf, model = pg1
    images, tokens, input_mask, _ = batch_with_padding(hf.config)
    lengths, N = input_mask.sum(1), 6
    P, B = model.config.num_image_tokens, len(tokens)
    config = EVERYTHING
    out = RecordingSampler(model, config=config).generate_tokens(images, tokens, lengths, N, eos_id=None,
                                                                 return_logits=True)
    new = np.asarray(out.tokens)
    per_token = {k: np.asarray(v) for k, v in out.sown["tokens"].items()}
    # teacher-forced: each prompt followed by its generated tokens, right-padded to one width, in one forward pass
    width = int(lengths.max()) + N
    seq, real, ar = np.zeros((B, width), np.int32), np.zeros((B, width), bool), np.zeros((B, width), np.int32)
    for b, n in enumerate(lengths):
        seq[b, :n + N] = np.r_[tokens[b, :n], np.asarray(new[b])]
        real[b, :n + N], ar[b, n:n + N] = True, 1
    _, ours = ours_recorded(model, (images, seq, real, ar), config)
    W = out.sown["prefix"]["llm.residuals"].shape[2] - P  # the prompt's bucketed width in the cache
    for b, n in enumerate(map(int, lengths)):
        rows = P + n - 1 + np.arange(N)  # the position whose output chose token j
        # cache slots: image and prompt from 0, the prompt's padding up to P + W, generated tokens from there
        slots = np.r_[np.arange(P + n), P + W + np.arange(N - 1)]
        for key in ("llm.residuals", "llm.layers.mlp.hidden", "llm.lens_logits"):
            assert close(per_token[key][:, b], ours[key][:, b, rows], 1e-5), key
        np.testing.assert_array_equal(per_token["llm.lens_tokens"][:, b], ours["llm.lens_tokens"][:, b, rows])
        attn = per_token["llm.layers.attn.weights"][:, b]  # [L, N, heads, cache slots]
        seen = ours["llm.layers.attn.weights"][:, b, rows]  # [L, N, heads, keys of the forward pass]
        assert np.abs(attn[..., slots] - seen[..., :len(slots)]).max() < 1e-5
        assert (seen[..., len(slots):] == 0).all()
        others = np.setdiff1d(np.arange(attn.shape[-1]), slots)
        assert (attn[..., others] == 0).all()  # the prompt's padding and slots not yet written
