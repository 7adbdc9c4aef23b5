"""Prototype for issue 26: sampling without sorting the vocabulary, with today's distribution.

Not the package: phase 2 moves `Sampling.choose` and `draw` into `paligemma/sampler.py`. `Sampling` here subclasses
today's `paligemma.sampler.Sampling` (same fields, same checks, one more static field, `bound`), so it can be
handed to today's `Sampler.generate_tokens(strategy=...)` as it is.

Today (`paligemma.sampler.Sampling.choose`): without `top_k`, `argsort` of all V scaled logits per row per step
(860 ms per step at batch 8, V = 257,152, on the 2-core CI machine), then `jax.random.categorical` (Gumbel-max:
V random numbers per row, 90 ms at batch 8). The distribution it draws from is

    P(i) = softmax(scaled)[i] / Z  for i in the kept set, 0 elsewhere,  scaled = logits / temperature,

where the kept set is every token, or the `top_k` largest (ties: lower index first, as `lax.top_k`), cut further
by `top_p`: in that order (probabilities renormalised over the top-k set when there is one), token j stays iff the
probability of the tokens before it is < top_p.

Here, the same P without a sort:
- `draw`: inverse-CDF sampling in two levels (a block of `DRAW_BLOCK` tokens by the blocks' masses, then a token
  in it by its own mass): two uniforms per row, one `exp` pass over V, no V-length random numbers and no V-length
  cumulative sum. Per token its probability is resolved to 2^-23 of its block's mass, as fine as
  `jax.random.categorical`'s float32 Gumbel noise (biased below about 1e-7, its documentation says).
- temperature alone: `draw(scaled)`.
- `top_k`: `lax.top_k(scaled, k)` (a partial selection, no full sort), `top_p` on those k sorted candidates
  exactly as today, `draw` among them.
- `top_p` alone: `lax.top_k(scaled, bound)` gives the `bound` most likely tokens, sorted. If their probability
  (under the full softmax) reaches top_p, the nucleus lies inside them (the token after them would have at least
  top_p before it), and today's rule is applied to them as is: exact. Otherwise (a flat distribution) the nucleus
  is found without sorting: its smallest logit v is the largest logit t with P(scaled >= t) >= top_p, found by
  bisection over the 2^32 float32 bit patterns (32 masked sums over V); tokens above v stay, and of the tokens
  equal to v the first n by index, n the count today's cumulative rule admits.
"""
from __future__ import annotations
import jax
import jax.numpy as jnp
from flax import struct
from paligemma import sampler as today
from paligemma.sampler import Greedy

DRAW_BLOCK = 512  # tokens per block of `draw`'s first level: about sqrt(V) balances its two levels


def draw(key, logits) -> jax.Array:  # float32[B, V] (-inf: never) -> int32[B]
    "One index per row with probability softmax(logits): inverse CDF over blocks, then within the chosen block."
    B, V = logits.shape
    nb = -(-V // DRAW_BLOCK)
    if nb * DRAW_BLOCK != V:
        logits = jnp.pad(logits, ((0, 0), (0, nb * DRAW_BLOCK - V)), constant_values=-jnp.inf)
    w = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True)).reshape(B, nb, DRAW_BLOCK)
    u = jax.random.uniform(key, (2, B, 1))

    def pick(weights, u):  # [B, n] non-negative, u [B, 1] in [0, 1) -> the first i with cumsum_i > u * total
        c = jnp.cumsum(weights, axis=-1)
        i = jnp.sum(c <= u * c[:, -1:], axis=-1)
        last = weights.shape[-1] - 1 - jnp.argmax(weights[:, ::-1] > 0, axis=-1)  # u * total rounded up to total
        return jnp.minimum(i, last)

    block = pick(w.sum(-1), u[0])
    inside = pick(w[jnp.arange(B), block], u[1])
    return (block * DRAW_BLOCK + inside).astype(jnp.int32)


def _nucleus_sorted(candidates, top_p):  # [B, n] sorted descending -> the same with the cut ones at -inf
    "Today's rule, on candidates that hold the whole nucleus: keep j iff the probability before it < top_p."
    probs = jax.nn.softmax(candidates, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs
    return jnp.where(before < top_p, candidates, -jnp.inf)


def _ordered(x):  # float32 -> uint32 with the same order
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(1 << 31))


def nucleus_threshold(scaled, top_p) -> jax.Array:  # float32[B, V] -> the same with the cut ones at -inf
    "Today's top_p cut over the whole vocabulary, without sorting: bisection for its smallest kept logit."
    probs = jax.nn.softmax(scaled, axis=-1)
    keys = _ordered(scaled)
    mass_from = lambda t: jnp.sum(jnp.where(keys >= t[:, None], probs, 0.0), axis=-1)  # P(scaled >= t)

    def step(_, bounds):  # invariant: P(>= lo) >= top_p; the answer is in [lo, hi]
        lo, hi = bounds
        gap = hi - lo
        mid = lo + (gap >> 1) + (gap & 1)
        ok = mass_from(mid) >= top_p
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

    lo, _ = jax.lax.fori_loop(0, 32, step, (jnp.min(keys, axis=-1), jnp.max(keys, axis=-1)))
    above = keys > lo[:, None]
    tied = keys == lo[:, None]
    mass_above = jnp.sum(jnp.where(above, probs, 0.0), axis=-1)
    p_tie = jnp.max(jnp.where(tied, probs, 0.0), axis=-1)
    # tie r (by index) stays iff mass_above + r * p_tie < top_p: the first ceil((top_p - mass_above) / p_tie)
    admitted = jnp.ceil((top_p - mass_above) / p_tie)

    def ranked(_):  # several tokens share the boundary logit: rank them by index
        return jnp.cumsum(tied, axis=-1) - 1 < admitted[:, None]

    several = jnp.sum(tied, axis=-1) > 1
    tie_kept = jax.lax.cond(jnp.any(several), ranked, lambda _: tied, None) & tied
    return jnp.where(above | tie_kept, scaled, -jnp.inf)


@struct.dataclass
class Sampling(today.Sampling):
    "Today's `Sampling` with `choose` drawing from the same distribution without sorting the vocabulary."
    bound: int = struct.field(pytree_node=False, default=256)  # top_p alone: candidates tried before bisection

    def choose(self, logits, key):  # float32[B, V], PRNG key -> int32[B]
        "One draw per row."
        scaled = logits / self.temperature
        V = scaled.shape[-1]
        k = self.top_k if self.top_k is not None else (V if self.top_p is not None and self.bound >= V else None)
        if k is not None:  # today's candidates, by a partial selection instead of a sort
            candidates, ids = jax.lax.top_k(scaled, k)
            if self.top_p is not None: candidates = _nucleus_sorted(candidates, self.top_p)
            return jnp.take_along_axis(ids, draw(key, candidates)[:, None], axis=-1)[:, 0]
        if self.top_p is None: return draw(key, scaled)
        candidates, ids = jax.lax.top_k(scaled, self.bound)
        probs = jnp.exp(candidates - jax.nn.logsumexp(scaled, axis=-1, keepdims=True))  # under the full softmax
        before = jnp.cumsum(probs, axis=-1) - probs
        inside = before[:, -1] + probs[:, -1] >= self.top_p  # the token after them would be cut: all in them

        def bounded(_):
            kept = jnp.where(before < self.top_p, candidates, -jnp.inf)
            return jnp.take_along_axis(ids, draw(key, kept)[:, None], axis=-1)[:, 0]

        return jax.lax.cond(jnp.all(inside), bounded, lambda _: draw(key, nucleus_threshold(scaled, self.top_p)),
                            None)


def sample_logits(logits, key, strategy=Greedy()):
    "`paligemma.sampler.sample_logits`, accepting this module's `Sampling` (a subclass of today's)."
    return today.sample_logits(logits, key, strategy)
