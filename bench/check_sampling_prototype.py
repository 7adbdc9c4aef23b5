"""The sort-free `Sampling` (`bench/sampling_prototype.py`) draws from today's distribution.

Run: python bench/check_sampling_prototype.py   (or: pytest bench/check_sampling_prototype.py)
The oracle is the definition, in float64 numpy (stable sort, cumulative probabilities, the kept set renormalised);
today's `paligemma.sampler.Sampling.choose` is checked against it too, so both are held to the same distribution:
- the kept sets (top_k, top_p through the bounded candidates, top_p through bisection, ties at the boundary) give
  the oracle's probabilities to 1e-6;
- 200,000 draws of today's `choose` and of the prototype's, per strategy, match the oracle's probabilities within
  5 standard deviations on every token, and never draw a token the oracle excludes.
"""
from __future__ import annotations
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import sampling_prototype as sp  # noqa: E402
from paligemma import sampler as today  # noqa: E402

DRAWS = 200_000


def oracle(logits, temperature=1.0, top_k=None, top_p=None) -> np.ndarray:
    "The probabilities today's `Sampling` means, from its definition, float64: [B, V]."
    out = []
    for row in np.asarray(logits, np.float64) / temperature:
        order = np.argsort(-row, kind="stable")[:top_k]  # ties: lower index first
        c = row[order]
        p = np.exp(c - c.max()); p /= p.sum()
        keep = (np.cumsum(p) - p < top_p) if top_p is not None else np.ones(len(c), bool)
        q = np.exp(c[keep] - c[keep].max()); q /= q.sum()
        full = np.zeros(len(row)); full[order[keep]] = q
        out.append(full)
    return np.stack(out)


def kept_probs(kept) -> np.ndarray:
    "softmax of kept logits (-inf: excluded), float64."
    k = np.asarray(kept, np.float64)
    p = np.exp(k - k.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def rows():
    "Test rows over V = 13: random, peaked, flat, and with ties straddling the nucleus boundary."
    rng = np.random.default_rng(0)
    tied = np.array([3.0, 1.0, 1.0, 1.0, 1.0, 0.5, -2.0, 1.0, -1.0, 0.0, 0.0, 3.0, -5.0])
    return jnp.asarray(np.stack([rng.normal(size=13) * 2, rng.normal(size=13) * 6, rng.normal(size=13) * 0.2, tied,
                                 -np.abs(rng.normal(size=13)) - 100.0]), jnp.float32)


STRATEGIES = [dict(temperature=0.7), dict(temperature=1.3, top_k=4), dict(temperature=1.0, top_p=0.8),
              dict(temperature=0.9, top_p=0.5), dict(temperature=1.0, top_k=6, top_p=0.6),
              dict(temperature=2.0, top_p=0.95), dict(temperature=1.0, top_p=0.3)]


def test_nucleus_threshold_is_todays_cut():
    "The bisection path alone (no candidates), ties at the boundary included."
    x = rows()
    for p in (0.05, 0.3, 0.5, 0.8, 0.95, 0.999):
        got = kept_probs(sp.nucleus_threshold(x, p))
        np.testing.assert_allclose(got, oracle(x, top_p=p), atol=1e-6, err_msg=f"top_p={p}")


def test_bounded_candidates_is_todays_cut():
    "top_p through `bound` candidates: when they hold the nucleus, today's rule on them is today's cut."
    x = rows()
    for p in (0.3, 0.5, 0.8):
        for bound in (3, 6, 12):
            s = sp.Sampling(1.0, top_p=p, bound=bound)
            cand, ids = jax.lax.top_k(x, bound)
            probs = np.exp(np.asarray(cand, np.float64) - np.log(np.exp(np.asarray(x, np.float64)).sum(-1,
                                                                                                keepdims=True)))
            inside = probs.sum(-1) >= p
            kept = np.full(x.shape, -np.inf)
            before = np.cumsum(probs, -1) - probs
            np.put_along_axis(kept, np.asarray(ids), np.where(before < p, np.asarray(cand), -np.inf), -1)
            want = oracle(x, top_p=p)
            np.testing.assert_allclose(kept_probs(kept)[inside], want[inside], atol=1e-6)
            assert s.bound == bound


def draws(choose, x, n=DRAWS) -> np.ndarray:
    "Token frequencies of n draws per row: [B, V]."
    B, V = x.shape
    tokens = jax.jit(lambda k: choose(jnp.repeat(x, n, 0), k))(jax.random.key(7)).reshape(B, n)
    return np.stack([np.bincount(np.asarray(t), minlength=V) / n for t in tokens])


def close(freq, p, n=DRAWS):
    "Every frequency within 5 standard deviations of its probability; nothing drawn where p is 0."
    sd = np.sqrt(p * (1 - p) / n) + 1e-12
    assert np.all(np.abs(freq - p) <= 5 * sd + 1e-9), np.max(np.abs(freq - p) / sd)
    assert np.all(freq[p == 0] == 0)
    return float(np.max(np.abs(freq - p)))


def test_draw():
    "`draw` alone, over a vocabulary of several blocks (V = 1,100 > 2 x 512) with -inf entries."
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 1100)) * 2
    x[0, ::3] = -np.inf
    x = jnp.asarray(x, jnp.float32)
    close(draws(lambda l, k: sp.draw(k, l), x, 400_000), kept_probs(x), 400_000)


def test_choose_matches_today():
    "Per strategy: today's draws and the prototype's both match the oracle (bound 4 forces the bisection path)."
    x = rows()
    for kw in STRATEGIES:
        want = oracle(x, **kw)
        close(draws(today.Sampling(**kw).choose, x), want)
        for bound in (4, 256):
            close(draws(sp.Sampling(**kw, bound=bound).choose, x), want)


if __name__ == "__main__":
    test_nucleus_threshold_is_todays_cut()
    test_bounded_candidates_is_todays_cut()
    print("kept sets: bisection and bounded candidates give the oracle's probabilities to 1e-6")
    test_draw()
    x = rows()
    print(f"draw: {DRAWS * 2:,} draws over V = 1,100 within 5 sd of softmax on every token")
    for kw in STRATEGIES:
        want = oracle(x, **kw)
        errs = [close(draws(today.Sampling(**kw).choose, x), want)] + [
            close(draws(sp.Sampling(**kw, bound=b).choose, x), want) for b in (4, 256)]
        print(f"{kw}: max |frequency - probability| today {errs[0]:.4f}, prototype {errs[1]:.4f} (bisection), "
              f"{errs[2]:.4f} (candidates); {DRAWS:,} draws per row, 5 rows")
