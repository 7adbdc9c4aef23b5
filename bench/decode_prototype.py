"""Prototype for issue 26: a KV cache that a decode step reads once and writes in place, in both layer layouts.

Not the package: phase 2 moves this into `paligemma/gemma/cache.py`, `layers.py`, `transformer.py` and `nn.py`.
It reuses the package's modules (their parameters and `Attention.qkv`, norms, feed-forward) and replaces only the
cached path: the cache's layout, the attention that reads it and the loop over layers.

Design (each choice measured in `bench/decode_bytes.py` and the probes under `bench/probes/`):
- One buffer per layer: `Cache.k` and `Cache.v` are tuples of L arrays, not one `[L, ...]` array. XLA:CPU hands a
  matmul whole buffers only, so a layer sliced out of an `[L, ...]` cache (a `dynamic-slice` in a scan, or a static
  slice in an unrolled loop) is copied before the attention reads it; a per-layer buffer is read where it lies.
- Layout `[B, K, S, H]`: the batch axes of both attention einsums (B, K) lead and the contracted axis is minor
  (keys: H) or second-minor (values: S), which is how XLA:CPU's batched matmul reads its operands, so neither
  einsum transposes the cache (`[B, S, K, H]` made it transpose keys and values of every layer every step).
- Write before read, one slot: `dynamic_update_slice` of this call's T keys at `index` along S, then attend over
  the whole buffer; with the cache donated, the update happens in place.
- The layer loop of a cached call is a Python loop in both layouts: per-layer blocks (list layout) or static
  slices of the stacked parameters (stacked layout), each with its own cache buffer. `Cache.create(stacked=True)`
  keeps the scan instead, with an `[L, ...]` cache in the scan's carry (written in place, read with a dynamic
  slice): the alternative measured beside it.
- A prefill into an empty cache (`encode(fresh=True)`) attends over the prefix's own keys, not the whole buffer.
"""
from __future__ import annotations
import jax
import jax.numpy as jnp
from flax import nnx, struct
from paligemma.gemma.transformer import GemmaConfig, Transformer, sliding_window_mask
from paligemma.nn import K_MASK


@struct.dataclass
class Cache:
    "Keys and values of every layer, one `[B, K, S, H]` buffer per layer, with the bookkeeping of `KVCache`."
    k: tuple  # L x [B, K, S, H] (or one [L, B, K, S, H] array: the scanned alternative)
    v: tuple  # L x [B, K, S, H]
    key_mask: jax.Array  # bool[B, S]
    key_positions: jax.Array  # int32[B, S]
    positions: jax.Array  # int32[B]
    index: jax.Array  # int32[]

    @classmethod
    def create(cls, config: GemmaConfig, batch: int, length: int, dtype=jnp.float32, stacked: bool = False) -> Cache:
        shape = (batch, config.num_kv_heads, length, config.head_dim)
        zeros = lambda: (jnp.zeros((config.depth, *shape), dtype) if stacked
                         else tuple(jnp.zeros(shape, dtype) for _ in range(config.depth)))
        k, v = zeros(), zeros()  # distinct buffers: each is donated
        return cls(k=k, v=v, key_mask=jnp.zeros((batch, length), bool),
                   key_positions=jnp.zeros((batch, length), jnp.int32), positions=jnp.zeros((batch,), jnp.int32),
                   index=jnp.zeros((), jnp.int32))

    @property
    def length(self) -> int: return self.key_mask.shape[1]


def attend(q, k, v, mask, *, softcap=None):
    "q [B, T, N, H] against k, v [B, K, S, H] under bool[B, T, S]: [B, T, N, H]. No transpose of k or v."
    B, T, N, H = q.shape
    K = k.shape[1]
    q = q.reshape(B, T, K, N // K, H)
    logits = jnp.einsum("BTKGH,BKSH->BKGTS", q, k, preferred_element_type=jnp.float32)
    if softcap is not None: logits = jnp.tanh(logits / softcap) * softcap
    logits = jnp.where(mask[:, None, None], logits, K_MASK)
    weights = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum("BKGTS,BKSH->BTKGH", weights.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return out.reshape(B, T, N, H)


def attention(attn, x, positions, mask, write):
    "`Attention.__call__` with a cache: `write(k, v)` ([B, K, T, H] each) stores them and returns what to attend."
    B, T, _ = x.shape
    q, k, v = attn.qkv(x, positions)  # [B, T, N, H], [B, T, K, H], [B, T, K, H]
    k_all, v_all, stored = write(k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3))  # T tokens: a small transpose
    encoded = attend(q, k_all.astype(q.dtype), v_all.astype(q.dtype), mask, softcap=attn.attn_logits_softcap)
    w = attn.attn_vec_einsum.w[...].astype(encoded.dtype)  # [N, H, D]
    out = jnp.matmul(encoded.reshape(B * T, -1), w.reshape(-1, w.shape[-1]), preferred_element_type=jnp.float32)
    return out.reshape(B, T, -1), stored


def block(layer, x, positions, mask, write):
    "`Block.__call__` with `attention` above."
    h, stored = attention(layer.attn, layer.pre_attention_norm(x), positions, mask, write)
    if layer.post_norms: h = layer.post_attention_norm(h)
    x = x + h
    h = layer.mlp(layer.pre_ffw_norm(x))
    if layer.post_norms: h = layer.post_ffw_norm(h)
    return x + h, stored


def put(buffer, new, index, axis):
    "Write `new` into `buffer` from `index` along `axis` (in place when `buffer` is donated)."
    return jax.lax.dynamic_update_slice_in_dim(buffer, new.astype(buffer.dtype), index, axis=axis)


def layers_of(llm: Transformer) -> list:
    "The blocks one by one: a list's own, or static slices of the stacked parameters."
    if isinstance(llm.layers, nnx.List): return list(llm.layers)
    graphdef, state = nnx.split(llm.layers)
    return [nnx.merge(graphdef, jax.tree.map(lambda a: a[i], state)) for i in range(llm.config.depth)]


def encode(llm: Transformer, x, positions, mask, local_mask, k, v, index, *, fresh: bool = False):
    """The decoder's blocks and final norm over `x` [B, T, D], each layer writing its slots `index`.. of its buffer.

    `fresh` (a prefill into an empty cache): attend over this call's T keys only (`mask` [B, T, T]), not over the
    whole cache, whose other slots are empty: a prefill then reads no cache at all, however long the cache."""
    x = x.astype(jnp.float32)
    if not isinstance(k, tuple): return _encode_scanned(llm, x, positions, mask, local_mask, k, v, index)
    ks, vs = [], []
    for i, layer in enumerate(layers_of(llm)):
        m = local_mask if llm.config.local_layers[i] else mask

        def write(kn, vn, i=i):
            stored = put(k[i], kn, index, 2), put(v[i], vn, index, 2)
            return (kn, vn, stored) if fresh else (*stored, stored)
        x, (ki, vi) = block(layer, x, positions, m, write)
        ks.append(ki)
        vs.append(vi)
    return llm.final_norm(x), tuple(ks), tuple(vs)


def _encode_scanned(llm, x, positions, mask, local_mask, k, v, index):
    "The alternative: stacked blocks scanned, the `[L, B, K, S, H]` cache in the carry, one layer read per step."
    graphdef, state = nnx.split(llm.layers)
    local = jnp.asarray(llm.config.local_layers)

    def body(carry, xs):
        x, k, v = carry
        layer_state, l, is_local = xs
        m = mask if local_mask is None else jnp.where(is_local, local_mask, mask)

        def write(kn, vn):
            k2 = jax.lax.dynamic_update_slice(k, kn[None].astype(k.dtype), (l, 0, 0, index, 0))
            v2 = jax.lax.dynamic_update_slice(v, vn[None].astype(v.dtype), (l, 0, 0, index, 0))
            return (jax.lax.dynamic_index_in_dim(k2, l, 0, keepdims=False),
                    jax.lax.dynamic_index_in_dim(v2, l, 0, keepdims=False), (k2, v2))
        x, (k, v) = block(nnx.merge(graphdef, layer_state), x, positions, m, write)
        return (x, k, v), None

    (x, k, v), _ = jax.lax.scan(body, (x, k, v), (state, jnp.arange(llm.config.depth), local))
    return llm.final_norm(x), k, v


def prefill(llm: Transformer, x, positions, mask, last, cache: Cache):
    "As `paligemma.gemma.cache.prefill`, on `Cache`; attends over the prefix's own keys, not the empty cache."
    B, T, _ = x.shape
    pad = cache.length - T
    window = llm.config.sliding_window
    local = None if window is None else sliding_window_mask(mask, positions, window)
    fresh = isinstance(cache.k, tuple)  # the scanned alternative keeps today's full-cache attention
    if not fresh:
        mask = jnp.pad(mask, ((0, 0), (0, 0), (0, pad)))
        local = None if local is None else jnp.pad(local, ((0, 0), (0, 0), (0, pad)))
    pre_logits, k, v = encode(llm, x, positions, mask, local, cache.k, cache.v, 0, fresh=fresh)
    logits = llm.logits(pre_logits[jnp.arange(B), last][:, None])[:, 0]
    key_mask = jnp.diagonal(mask[:, :, :T], axis1=1, axis2=2)
    return logits, cache.replace(k=k, v=v, key_mask=jnp.pad(key_mask, ((0, 0), (0, pad))),
                                 key_positions=jnp.pad(positions, ((0, 0), (0, pad))).astype(jnp.int32),
                                 positions=(positions[jnp.arange(B), last] + 1).astype(jnp.int32),
                                 index=jnp.asarray(T, jnp.int32))


def extend(llm: Transformer, tokens, cache: Cache):
    "As `paligemma.gemma.cache.extend`, on `Cache`."
    x = llm.embed(tokens[:, None])
    key_mask = put(cache.key_mask, jnp.ones(tokens.shape, bool)[:, None], cache.index, 1)
    key_positions = put(cache.key_positions, cache.positions[:, None], cache.index, 1)
    mask = key_mask[:, None, :]
    window = llm.config.sliding_window
    local = None if window is None else mask & (cache.positions[:, None, None] - key_positions[:, None, :] < window)
    pre_logits, k, v = encode(llm, x, cache.positions[:, None], mask, local, cache.k, cache.v, cache.index)
    logits = llm.logits(pre_logits)[:, 0]
    return logits, cache.replace(k=k, v=v, key_mask=key_mask, key_positions=key_positions,
                                 positions=cache.positions + 1, index=cache.index + 1)


def greedy_loop(llm: Transformer, x, positions, mask, last, cache, steps: int):
    "Prefill, then `steps` greedy extends in one `while_loop`, the cache carried through it: the generation shape."
    logits, cache = prefill(llm, x, positions, mask, last, cache)
    B = x.shape[0]
    tokens = jnp.zeros((B, steps + 1), jnp.int32).at[:, 0].set(jnp.argmax(logits, -1).astype(jnp.int32))

    def body(s):
        i, tokens, cache = s
        logits, cache = extend(llm, tokens[:, i], cache)
        return i + 1, tokens.at[:, i + 1].set(jnp.argmax(logits, -1).astype(jnp.int32)), cache

    _, tokens, cache = jax.lax.while_loop(lambda s: s[0] < steps, body, (jnp.int32(0), tokens, cache))
    return tokens, cache
