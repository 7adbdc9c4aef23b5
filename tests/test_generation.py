"The sampler against big_vision's greedy references and transformers' generate, on the same weights."
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from paligemma import GemmaConfig, PaliGemma, PaliGemmaConfig, Sampler, ViTConfig, load_checkpoint
from paligemma.formats.bigvision import config_from_record
from paligemma.formats.hf import config_from_hf, model_from_hf
from paligemma.testing import load_reference
from hf_utils import hf_random_model, hf_state_numpy, hf_tiny_config


def hf_greedy(model, image, prompt, n):
    "transformers' greedy generation for one example, with no padding; EOS does not stop it."
    cfg = model.config
    P = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    ids = torch.tensor(np.r_[np.full(P, cfg.image_token_id), prompt][None], dtype=torch.long)
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        out = model.generate(input_ids=ids, pixel_values=torch.tensor(image[None].transpose(0, 3, 1, 2)),
                             attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids),
                             do_sample=False, max_new_tokens=n, pad_token_id=0)
    return out[0, ids.shape[1]:].numpy()


@pytest.mark.parametrize("gemma2", [False, True], ids=["paligemma", "paligemma2"])
def test_greedy_equals_transformers_generate(gemma2):
    "A batch of 3 prompts of lengths 7, 3, 12 (padded together) against transformers, one example at a time."
    hf = hf_random_model(hf_tiny_config(gemma2=gemma2))
    model = model_from_hf(hf_state_numpy(hf), config_from_hf(hf.config.to_dict()))
    rng = np.random.default_rng(1)
    lengths = np.array([7, 3, 12])
    prompts = np.zeros((3, 12), np.int32)
    for b, n in enumerate(lengths):
        prompts[b, :n] = np.r_[2, rng.integers(3, 200, n - 1)]
    images = rng.uniform(-1, 1, (3, 42, 42, 3)).astype(np.float32)
    ours = np.asarray(Sampler(model).generate_tokens(images, prompts, lengths, 12, eos_id=None).tokens)
    theirs = np.stack([hf_greedy(hf, images[b], prompts[b, :lengths[b]], 12) for b in range(3)])
    print(ours, theirs, sep="\n")
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("case", ["pg1_tiny", "pg2_tiny", "pg2_tiny_qemb"])
@pytest.mark.parametrize("cache", ["f32", "bf16"])
def test_greedy_equals_big_vision(case, cache):
    ref = load_reference(case)
    g = ref["greedy"]
    model = load_checkpoint(ref["path"] / "params.npz", config=config_from_record(ref["config"]),
                            dtype=jnp.float32)
    suffix = "_f32cache" if cache == "f32" else ""
    sampler = Sampler(model, cache_dtype=jnp.float32 if cache == "f32" else jnp.bfloat16)
    lengths = g["prompt_input_mask"].sum(1)
    out = sampler.generate_tokens(g["image"], g["prompt_tokens"], lengths, int(g["max_decode_len"]),
                                  eos_id=int(g["eos_token"]), return_logits=True)
    np.testing.assert_array_equal(np.asarray(out.tokens), g["tokens" + suffix])
    # big_vision leaves the final soft cap off step 0 only; ours applies it at every step.
    cap = model.config.llm.final_logits_softcap
    theirs = g["step_logits" + suffix].astype(np.float32).copy()
    if cap: theirs[:, 0] = np.tanh(theirs[:, 0] / cap) * cap
    # float32 cache: float32 math everywhere (conftest.py pins matmul precision on TPU/GPU); bfloat16 cache: the
    # rounding of the cached keys and values themselves, as in big_vision, whatever the backend
    tol = 1e-4 if cache == "f32" else 3e-2
    assert np.abs(np.asarray(out.logits) - theirs).max() < tol
    np.testing.assert_allclose(np.asarray(out.logprobs)[:, 1:], g["logp" + suffix][:, 1:], atol=tol)


def test_pg2_cached_steps_equal_teacher_forced():
    "PaliGemma 2 (soft caps, GQA, post-norms): cached decode logits equal big_vision's teacher-forced forward."
    ref = load_reference("pg2_tiny")
    g = ref["greedy"]
    model = load_checkpoint(ref["path"] / "params.npz", config=config_from_record(ref["config"]),
                            dtype=jnp.float32)
    lengths = g["prompt_input_mask"].sum(1)
    n = int(g["max_decode_len"])
    steps = Sampler(model, cache_dtype=jnp.float32).generate_tokens(
        g["image"], g["prompt_tokens"], lengths, n, eos_id=None, return_logits=True).logits
    tf = g["teacher_forced_text_logits_softcapped"].astype(np.float32)
    from_tf = np.stack([tf[b, lengths[b] - 1 + np.arange(n)] for b in range(len(lengths))])
    assert np.abs(np.asarray(steps) - from_tf).max() < 1e-4


def test_scored_log_probabilities_equal_sampled_ones_with_a_final_cap():
    "Gemma 2 with a final soft cap of 3: log-softmax of `model(...)` at the sampled tokens is the sampler's logprobs."
    config = PaliGemmaConfig(ViTConfig(width=36, depth=2, mlp_dim=60, num_heads=3),
                             GemmaConfig(vocab_size=97, width=48, depth=3, mlp_dim=80, num_heads=4, num_kv_heads=2,
                                         head_dim=14, post_norms=True, attn_logits_softcap=5.0,
                                         final_logits_softcap=3.0), image_size=42)
    model = nnx.eval_shape(lambda: PaliGemma(config, rngs=nnx.Rngs(0)))  # built abstractly: no initializer compiled
    rng = np.random.default_rng(0)
    for _, v in nnx.to_flat_state(nnx.state(model)):  # weights drawn by numpy
        v.set_value(jnp.asarray(rng.standard_normal(v.shape).astype(np.float32), v.dtype))
    B, L, N = 2, 5, 6
    images = rng.uniform(-1, 1, (B, 42, 42, 3)).astype(np.float32)
    prompts = rng.integers(3, 97, (B, L)).astype(np.int32)
    lengths = np.array([5, 3])
    out = Sampler(model, cache_dtype=jnp.float32).generate_tokens(images, prompts, lengths, N, temperature=1.0,
                                                                  seed=1, eos_id=None)
    new = np.asarray(out.tokens)
    seq, real, ar = np.zeros((B, L + N), np.int32), np.zeros((B, L + N), bool), np.zeros((B, L + N), np.int32)
    for b, n in enumerate(lengths):  # each prompt, then its generated tokens as a causal suffix
        seq[b, :n + N], real[b, :n + N], ar[b, n:n + N] = np.r_[prompts[b, :n], new[b]], True, 1
    logits = model(jnp.asarray(images), jnp.asarray(seq), jnp.asarray(real), jnp.asarray(ar))
    logp = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    rows = [lengths[b] - 1 + np.arange(N) for b in range(B)]  # the positions whose logits chose each new token
    scored = np.stack([logp[b, rows[b], new[b]] for b in range(B)])
    x, mask, positions = model.embed(*map(jnp.asarray, (images, seq, real, ar)))
    uncapped = np.asarray(jax.nn.log_softmax(model.llm.embedder.decode(model.llm.encode(x, positions, mask)), axis=-1))
    off = np.stack([uncapped[b, config.num_image_tokens + rows[b], new[b]] for b in range(B)])
    print(f"scored vs sampled: {np.abs(scored - out.logprobs).max():.1e}; without the cap {np.abs(off - out.logprobs).max():.2f} nats")
    assert np.abs(off - out.logprobs).max() > 1.0  # the cap matters here: leaving it off one side would show
    np.testing.assert_allclose(scored, np.asarray(out.logprobs), atol=1e-4)
