"""The prototype cache (`bench/decode_prototype.py`) gives today's `paligemma.gemma.cache` logits, in every layout.

Run: python bench/check_decode_prototype.py   (or: pytest bench/check_decode_prototype.py)
A small Gemma 2 decoder (GQA, sliding window on even layers, soft caps, post-norms; odd, distinct sizes), every
parameter random; a ragged batch prefilled, then extended token by token: the logits of every call must match
today's `prefill`/`extend` to 1e-5, in the list layout, the stacked layout (unrolled over static slices) and the
scanned alternative (`[L, ...]` cache in the scan's carry), and inside a donated generation `while_loop`.
"""
from __future__ import annotations
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).parent))
import decode_prototype as proto  # noqa: E402
from paligemma.gemma import cache as today  # noqa: E402
from paligemma.gemma.transformer import GemmaConfig, Transformer  # noqa: E402

CONFIG = GemmaConfig(vocab_size=37, width=48, depth=3, mlp_dim=40, num_heads=6, num_kv_heads=2, head_dim=10,
                     sliding_window=5, attn_logits_softcap=50.0, final_logits_softcap=30.0, post_norms=True)
B, T, S, STEPS = 3, 7, 19, 6


def model(stacked: bool) -> Transformer:
    "Every parameter random (norm scales too), the same values in both layouts."
    llm = Transformer(CONFIG.replace(stack_layers=stacked), rngs=nnx.Rngs(0))
    keys = iter(jax.random.split(jax.random.key(1), 64))
    state = nnx.state(llm, nnx.Param)
    flat = {p: v for p, v in nnx.to_flat_state(state)}
    for path, var in flat.items():
        var.set_value(0.3 * jax.random.normal(next(keys), var.get_value().shape, var.get_value().dtype))
    nnx.update(llm, nnx.from_flat_state(flat))
    return llm


def inputs():
    "Embedded prefixes of lengths 7, 5 and 3 (padded to 7), prefix-LM mask, and tokens to extend with."
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(B, T, CONFIG.width)), jnp.float32)
    lengths = np.array([7, 5, 3])
    real = np.arange(T)[None] < lengths[:, None]
    mask = jnp.asarray(real[:, None, :] & real[:, :, None] & (np.arange(T)[None, None] <= np.maximum(
        np.arange(T)[None, :, None], 2)))  # the first 3 tokens see each other (a prefix), the rest causally
    positions = jnp.asarray(np.cumsum(real, 1) - 1, jnp.int32)
    tokens = jnp.asarray(rng.integers(0, CONFIG.vocab_size, (STEPS, B)), jnp.int32)
    return x, positions, mask, jnp.asarray(lengths - 1, jnp.int32), tokens


def run(llm, new_cache, prefill, extend):
    x, positions, mask, last, tokens = inputs()
    step = jax.jit(lambda t, c: extend(llm, t, c))
    logits, cache = jax.jit(lambda c: prefill(llm, x, positions, mask, last, c))(new_cache)
    out = [logits]
    for t in tokens:
        logits, cache = step(t, cache)
        out.append(logits)
    return np.stack(out)


def reference(stacked: bool):
    return run(model(stacked), today.KVCache.create(CONFIG, B, S), today.prefill, today.extend)


def check(stacked: bool, scanned_cache: bool = False):
    with jax.default_matmul_precision("float32"):
        want = reference(stacked)
        got = run(model(stacked), proto.Cache.create(CONFIG, B, S, stacked=scanned_cache), proto.prefill,
                  proto.extend)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    return float(np.abs(got - want).max())


def test_list_layout(): check(stacked=False)
def test_stacked_layout_unrolled(): check(stacked=True)
def test_stacked_layout_scanned_cache(): check(stacked=True, scanned_cache=True)


def test_generation_loop():
    "Greedy tokens of the donated `while_loop` equal today's token-by-token greedy decode."
    with jax.default_matmul_precision("float32"):
        llm = model(False)
        x, positions, mask, last, _ = inputs()
        tokens, _ = jax.jit(lambda c: proto.greedy_loop(llm, x, positions, mask, last, c, STEPS), donate_argnums=0)(
            proto.Cache.create(CONFIG, B, S))
        logits, cache = today.prefill(llm, x, positions, mask, last, today.KVCache.create(CONFIG, B, S))
        want = [jnp.argmax(logits, -1)]
        for _ in range(STEPS):
            logits, cache = today.extend(llm, want[-1].astype(jnp.int32), cache)
            want.append(jnp.argmax(logits, -1))
    np.testing.assert_array_equal(np.asarray(tokens), np.stack(want, 1))


if __name__ == "__main__":
    for name, kw in [("list", dict(stacked=False)), ("stacked, unrolled", dict(stacked=True)),
                     ("stacked, scanned [L, ...] cache", dict(stacked=True, scanned_cache=True))]:
        print(f"{name}: prefill + {STEPS} extends, max |logits - today's| = {check(**kw):.2e}")
    test_generation_loop()
    print("generation while_loop: same greedy tokens as today's prefill/extend")
