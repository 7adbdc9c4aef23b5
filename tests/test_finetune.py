"Fine-tuning: the loss and its gradients against transformers' autograd, what each choice trains, LoRA merging."
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from paligemma.formats.hf import config_from_hf, hf_rules, model_from_hf, normalize_hf_key
from paligemma.formats.bigvision import checkpoint_arrays
from paligemma.finetune import (cast_params, count_params, cross_entropy, loss_fn, make_optimizer, train_step,
                                trainable_filter)
from paligemma.lora import add_lora, merge_lora
from paligemma.sampler import Sampler
from hf_utils import batch_with_padding, hf_inputs, hf_random_model, hf_state_numpy, hf_tiny_config

# HF parameter -> checked for its gradient: attention (MQA query, key half of the fused kv), MLP (fused gate half, down),
# a norm gain, the tied embedding (input and output), and the vision tower's first and last pieces.
GRAD_CHECKS = [
    "language_model.layers.1.self_attn.q_proj.weight",
    "language_model.layers.2.self_attn.k_proj.weight",
    "language_model.layers.0.mlp.gate_proj.weight",
    "language_model.layers.2.mlp.down_proj.weight",
    "language_model.layers.1.input_layernorm.weight",
    "language_model.embed_tokens.weight",
    "vision_tower.embeddings.patch_embedding.weight",
    "multi_modal_projector.linear.weight",
]


def as_batch(images, tokens, input_mask, mask_ar):
    return dict(images=jnp.asarray(images), tokens=jnp.asarray(tokens), input_mask=jnp.asarray(input_mask),
                mask_ar=jnp.asarray(mask_ar), loss_mask=jnp.asarray(mask_ar))  # the suffix is what mask_ar marks


def hf_loss_and_grads(hf, images, tokens, input_mask, mask_ar):
    "transformers' loss with labels on the suffix (-100 elsewhere; it shifts them itself), and its parameter grads."
    P, inputs = hf_inputs(hf, images, tokens, input_mask, mask_ar)
    B = tokens.shape[0]
    labels = np.concatenate([np.full((B, P), -100), np.where(mask_ar == 1, tokens, -100)], axis=1)
    hf.zero_grad()
    out = hf(**inputs, labels=torch.tensor(labels, dtype=torch.long))
    out.loss.backward()
    return out.loss.item(), {normalize_hf_key(k): p.grad.detach().numpy() for k, p in hf.named_parameters()}


def our_layout(hf_key, grad, config):
    "(our flat path, index into our stacked array, the HF gradient in our layout) by the checkpoint key mapping."
    for rule in hf_rules(config.llm.post_norms):
        m = re.fullmatch(re.escape(rule.hf).replace(r"\{i\}", r"(\d+)"), hf_key)
        if m:
            index = (int(m.group(1)),) if m.groups() else ()
            if rule.half is not None: index += (rule.half,)  # a half of a fused weight
            return rule.param, index, rule.load(grad, config)
    raise KeyError(hf_key)


def rel(a, b): return float(np.abs(a - b).max() / np.abs(b).max())


def in_layout(config, stack: bool):
    "`config` with its decoder's layers stacked (True) or a list (False)."
    return config.replace(llm=config.llm.replace(stack_layers=stack))


@pytest.mark.parametrize("gemma2", [False, True], ids=["paligemma1", "paligemma2"])
def test_loss_and_gradients_match_transformers(gemma2):
    "float32, batch of 3 with padding and different prefix/suffix splits; Gemma 2 with both soft caps."
    hf = hf_random_model(hf_tiny_config(gemma2=gemma2))
    config = config_from_hf(hf.config.to_dict())
    model = model_from_hf(hf_state_numpy(hf), config)
    inputs = batch_with_padding(hf.config)
    theirs, hf_grads = hf_loss_and_grads(hf, *inputs)
    batch = as_batch(*inputs)
    ours, grads = nnx.jit(nnx.value_and_grad(lambda m: loss_fn(m, batch)))(model)
    print(f"loss: ours {float(ours):.6f}, transformers {theirs:.6f}, rel {abs(float(ours) - theirs) / theirs:.1e}")
    assert abs(float(ours) - theirs) <= 1e-5 * theirs
    flat = checkpoint_arrays(grads)  # the checkpoint's names and [L, ...] arrays, whichever layout the model has
    for key in GRAD_CHECKS:
        path, index, expected = our_layout(key, hf_grads[key], config)
        got = flat[path][index]
        assert got.shape == expected.shape, (key, got.shape, expected.shape)
        print(f"grad {key}: rel {rel(got, expected):.1e}")
        assert rel(got, expected) < 1e-4, key


def test_reductions():
    "tokens: mean over all targets; examples: mean over examples of their mean (big_vision); shift by one."
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
    tokens = rng.integers(0, 7, (2, 5))
    loss_mask = np.array([[0, 0, 1, 0, 0], [0, 1, 1, 1, 1]])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp[:, :-1], tokens[:, 1:, None], -1)[..., 0]
    w = loss_mask[:, 1:]
    np.testing.assert_allclose(cross_entropy(logits, tokens, loss_mask), (nll * w).sum() / w.sum(), rtol=1e-6)
    np.testing.assert_allclose(cross_entropy(logits, tokens, loss_mask, "examples"),
                               np.mean((nll * w).sum(1) / w.sum(1)), rtol=1e-6)
    empty = np.zeros_like(loss_mask)
    assert float(cross_entropy(logits, tokens, empty)) == 0.0 == float(cross_entropy(logits, tokens, empty, "examples"))


@pytest.fixture(scope="module")
def pg1():
    hf = hf_random_model(hf_tiny_config())
    config = config_from_hf(hf.config.to_dict())
    return hf_state_numpy(hf), config, as_batch(*batch_with_padding(hf.config))


def flat_params(model):
    return checkpoint_arrays(model)  # the same names and arrays in either layout


@pytest.mark.parametrize("trainable", ["all", "lora"])
def test_train_step_donates_what_it_replaces(pg1, trainable):
    """After a step the old trained parameters and optimizer state are deleted (donated, on CPU too), the frozen ones
    kept; the losses equal those of the same step without donation. The donated steps are the programs other tests
    train with (all: the default reduction; LoRA: alpha 6 and the mean over examples, as the LoRA test below), so
    that they compile once."""
    state, config, batch = pg1
    reduction = "examples" if trainable == "lora" else "tokens"

    def setup():
        model = model_from_hf(state, config)
        if trainable == "lora": add_lora(model, 3, alpha=6.0, rngs=nnx.Rngs(0))
        return model, make_optimizer(model, 1e-2, 5, wrt=trainable_filter(trainable))

    @nnx.jit
    def plain_step(model, opt, batch):  # nothing donated
        loss, grads = nnx.value_and_grad(lambda m: loss_fn(m, batch, reduction=reduction),
                                         argnums=nnx.DiffState(0, opt.wrt))(model)
        opt.update(model, grads)
        return loss

    ref_model, ref_opt = setup()
    expected = [float(plain_step(ref_model, ref_opt, batch)) for _ in range(3)]
    model, opt = setup()
    losses = []
    for _ in range(3):
        replaced = jax.tree.leaves(nnx.state(model, opt.wrt)) + jax.tree.leaves(nnx.state(opt))
        frozen = jax.tree.leaves(nnx.state(model, nnx.Not(opt.wrt)))
        losses.append(float(train_step(model, opt, batch, reduction=reduction)[0]))
        assert replaced and all(a.is_deleted() for a in replaced)
        assert (trainable == "lora") == bool(frozen) and not any(a.is_deleted() for a in frozen)
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, expected, rtol=1e-6)


TRACED = []  # one entry per function `jax.jit` traces (a program it has not compiled in this process)
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kw: TRACED.append(event) if event == "/jax/core/compile/jaxpr_trace_duration" else None)


def test_other_rates_and_lengths_share_one_compiled_step(pg1):
    """`make_optimizer`'s lr, warmup and steps are optimizer state: a second optimizer with other values compiles no
    new train step, and its steps equal those of optax's AdamW on `warmup_cosine_decay_schedule` (a closure)."""
    import optax
    state, config, batch = pg1

    def run(make, steps):
        "The losses of `steps` train steps, the parameters after them, and how many programs the steps traced."
        model = model_from_hf(state, config)
        opt, traced = make(model), len(TRACED)
        losses = [float(train_step(model, opt, batch)[0]) for _ in range(steps)]
        return losses, flat_params(model), len(TRACED) - traced

    run(lambda m: make_optimizer(m, 1e-2, 10, warmup=2), 2)  # compiles the step (unless an earlier test did)
    losses, params, traced = run(lambda m: make_optimizer(m, 3e-3, 6, warmup=3), 6)
    assert traced == 0  # another rate, warmup and length: the same program
    schedule = optax.warmup_cosine_decay_schedule(0.0, 3e-3, 3, 6, end_value=0.0)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, b1=0.9, b2=0.999, weight_decay=0.0))
    ref_losses, ref_params, ref_traced = run(lambda m: nnx.Optimizer(m, tx, wrt=nnx.Param), 6)
    assert ref_traced > 0  # optax's closure: a program of its own
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-6)
    for k in ref_params: np.testing.assert_allclose(params[k], ref_params[k], rtol=1e-6, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("stack", [True, False], ids=["stacked", "list"])
def test_attention_only_with_bf16_frozen_overfits(pg1, stack):
    "Attention-only, frozen weights stored in bfloat16: only q/kv/attn_vec change, and 20 steps fit one batch."
    state, config, batch = pg1
    model = model_from_hf(state, in_layout(config, stack))
    cast_params(model, "attention")
    before = flat_params(model)
    opt = make_optimizer(model, 3e-3, 20, warmup=1, wrt=trainable_filter("attention"))
    losses, norms = zip(*[(float(l), float(g)) for l, g in (train_step(model, opt, batch) for _ in range(20))])
    after = flat_params(model)
    changed = sorted(k for k in before if not np.array_equal(before[k], after[k]))
    assert changed == [f"llm/layers/attn/{p}/w" for p in ("attn_vec_einsum", "kv_einsum", "q_einsum")]
    assert {str(v.dtype) for k, v in after.items() if k not in changed} == {"bfloat16"}
    assert {str(after[k].dtype) for k in changed} == {"float32"}
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; first gradient norm {norms[0]:.2f}")
    assert losses[-1] < 0.5 * losses[0] and all(np.isfinite(norms))


@pytest.mark.parametrize("stack", [True, False], ids=["stacked", "list"])
def test_lora_trains_adapters_only_and_merges(pg1, stack):
    "LoRA in either layout: only adapter factors change, the loss falls; merged = adapted logits, no adapters."
    state, config, batch = pg1
    config = in_layout(config, stack)
    model = model_from_hf(state, config)
    add_lora(model, 3, alpha=6.0, rngs=nnx.Rngs(0))
    if stack: assert model.llm.layers.mlp.gating_einsum.lora.a.shape == (3, 2, 64, 3)  # [L, C, D, r]
    else: assert [b.mlp.gating_einsum.lora.a.shape for b in model.llm.layers] == [(2, 64, 3)] * 3  # [C, D, r] per block
    assert count_params(model, "lora") == 3 * 3 * ((64 + 4 * 24) + 2 * (64 + 24) + (4 * 24 + 64) + 2 * (64 + 96)
                                                   + (96 + 64))
    forward = nnx.jit(lambda m: m(batch["images"], batch["tokens"], batch["input_mask"], batch["mask_ar"]))
    plain = np.asarray(forward(model_from_hf(state, config)))
    np.testing.assert_array_equal(np.asarray(forward(model)), plain)  # B = 0: unchanged
    before = flat_params(model)
    opt = make_optimizer(model, 1e-2, 10, wrt=trainable_filter("lora"))
    losses = [float(train_step(model, opt, batch, reduction="examples")[0]) for _ in range(10)]
    changed = {k for k in before if not np.array_equal(before[k], flat_params(model)[k])}
    assert changed and all(k.endswith(("/lora/a", "/lora/b", "_lora/a", "_lora/b")) for k in changed), changed
    assert losses[-1] < losses[0]
    adapted = np.asarray(forward(model))
    assert np.abs(adapted - plain).max() > 1e-2
    merge_lora(model)
    assert count_params(model, "lora") == 0
    assert sorted(flat_params(model)) == sorted(flat_params(model_from_hf(state, config)))
    np.testing.assert_allclose(np.asarray(forward(model)), adapted, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("stack", [True, False], ids=["stacked", "list"])
def test_adapted_model_generates_with_the_cache(pg1, stack):
    "Adapters attached, not merged: the sampler's cached steps equal the same model's full forward, in either layout."
    state, config, batch = pg1
    model = model_from_hf(state, in_layout(config, stack))
    add_lora(model, 3, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(1)  # drawn by numpy: no random-number program compiled per factor shape
    for _, b in nnx.to_flat_state(nnx.state(model, nnx.LoRAParam)):  # every factor non-zero: the adapters act
        b.set_value(jnp.asarray(0.3 * rng.standard_normal(b.get_value().shape), b.get_value().dtype))
    images, tokens, input_mask = (np.asarray(batch[k]) for k in ("images", "tokens", "input_mask"))
    lengths, N = input_mask.sum(1), 4
    out = Sampler(model, cache_dtype=jnp.float32).generate_tokens(images, tokens, lengths, N, eos_id=None,
                                                                  return_logits=True)
    new = np.asarray(out.tokens)
    B, width = len(tokens), int(lengths.max()) + N
    seq, real, ar = np.zeros((B, width), np.int32), np.zeros((B, width), bool), np.zeros((B, width), np.int32)
    for b, n in enumerate(lengths):  # each prompt (all prefix), then its generated tokens as a causal suffix
        seq[b, :n + N], real[b, :n + N], ar[b, n:n + N] = np.r_[tokens[b, :n], new[b]], True, 1
    forward = nnx.jit(lambda m, *inputs: m(*inputs))  # one compiled program, not every operation compiled alone
    full = np.asarray(forward(model, *map(jnp.asarray, (images, seq, real, ar))))
    from_full = np.stack([full[b, lengths[b] - 1 + np.arange(N)] for b in range(B)])
    plain = model_from_hf(state, in_layout(config, stack))
    assert np.abs(np.asarray(forward(plain, *map(jnp.asarray, (images, seq, real, ar)))) - full).max() > 1e-2  # adapted
    np.testing.assert_allclose(np.asarray(out.logits), from_full, atol=1e-4, rtol=1e-4)


def test_bad_choices(pg1):
    with pytest.raises(ValueError, match="'all', 'attention' or 'lora'"): trainable_filter("mlp")
    with pytest.raises(ValueError, match="'tokens' or 'examples'"): cross_entropy(jnp.zeros((1, 2, 3)), jnp.zeros((1, 2), int), jnp.ones((1, 2)), "sum")
    state, config, batch = pg1
    with pytest.raises(KeyError, match="lacks \\['loss_mask'\\]"):
        loss_fn(model_from_hf(state, config), {k: v for k, v in batch.items() if k != "loss_mask"})


def test_defaults_and_recipe_errors(pg1):
    "One default learning rate per choice, LoRA's the largest (bench/RESULTS.md); bad recipes fail before training."
    from paligemma.finetune import DEFAULT_LORA_RANK, DEFAULT_LR, finetune
    assert set(DEFAULT_LR) == {"all", "attention", "lora"} and DEFAULT_LORA_RANK >= 1
    assert DEFAULT_LR["lora"] > DEFAULT_LR["all"]  # a fresh adapter moves its outputs more slowly (bench/RESULTS.md)
    state, config, batch = pg1
    model = model_from_hf(state, config)
    before = flat_params(model)
    image = np.asarray(batch["images"][0])
    with pytest.raises(ValueError, match="'all', 'attention' or 'lora'"): finetune(model, None, [], "mlp")
    with pytest.raises(ValueError, match="no examples"): finetune(model, None, [], "lora")
    with pytest.raises(KeyError, match="example 1 lacks \\['prefix'\\]"):
        finetune(model, None, [dict(image=image, prefix="a", suffix="b"), dict(image=image, suffix="b")], "all")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        finetune(model, None, [dict(image=image, prefix="a", suffix="b")], "all", batch_size=0)
    after = flat_params(model)
    assert sorted(after) == sorted(before) and all(np.array_equal(before[k], after[k]) for k in before)
