"""`Sampling` draws from the distribution the sorting implementation drew from, without sorting the vocabulary.

The reference is the implementation the library had before (kept verbatim below in `previous_candidates`: an `argsort`
of every row, today's cumulative top-p rule on the sorted candidates, `jax.random.categorical`); its exact
distribution is the softmax of the logits it hands to `categorical`, and that is checked against the definition in
float64 numpy. Each path of the new `Sampling` (plain temperature, top-k, top-p by rejection, top-p through the
bounded candidates, top-p through bisection, ties at the nucleus' boundary) gives that distribution: its kept set
exactly, its draws within a chi-square bound that a wrong probability fails."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from paligemma.sampler import (Greedy, Sampling, Strategy, draw, inverse_cdf, nucleus_sorted, nucleus_threshold,
                               sample_logits, top_k)

V = 13  # an odd vocabulary, smaller than `bound`'s default, so each path is forced by `bound` below
DRAWS = 60_000


def previous_candidates(logits, temperature=1.0, top_k=None, top_p=None):
    "The sorting implementation's `Sampling.choose` (commit 5628a52), verbatim up to its draw: (kept logits, their ids)."
    scaled = logits / temperature
    if top_k is not None:
        candidates, ids = jax.lax.top_k(scaled, top_k)
    else:
        ids = jnp.argsort(-scaled, axis=-1)
        candidates = jnp.take_along_axis(scaled, ids, axis=-1)
    if top_p is not None:
        probs = jax.nn.softmax(candidates, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs
        candidates = jnp.where(before < top_p, candidates, -jnp.inf)
    return candidates, ids


def previous_kept(logits, temperature=1.0, top_k=None, top_p=None):
    "The logits the sorting implementation handed to `jax.random.categorical`, back in vocabulary order: [B, V]."
    candidates, ids = previous_candidates(logits, temperature, top_k, top_p)
    out = jnp.full(logits.shape, -jnp.inf)
    return out.at[jnp.arange(logits.shape[0])[:, None], ids].set(candidates)


def previous_choose(logits, key, temperature=1.0, top_k=None, top_p=None):
    "The sorting implementation's draw: one token per row."
    candidates, ids = previous_candidates(logits, temperature, top_k, top_p)
    choice = jax.random.categorical(key, candidates, axis=-1)
    return jnp.take_along_axis(ids, choice[:, None], axis=-1)[:, 0]


def definition(logits, temperature=1.0, top_k=None, top_p=None) -> np.ndarray:
    "The probabilities the rules mean, in float64: stable sort (ties: lower index first), cut, renormalise."
    out = []
    for row in np.asarray(logits, np.float64) / temperature:
        order = np.argsort(-row, kind="stable")[:top_k]
        c = row[order]
        p = np.exp(c - c.max()); p /= p.sum()
        keep = np.cumsum(p) - p < top_p if top_p is not None else np.ones(len(c), bool)
        full = np.zeros(len(row)); full[order[keep]] = np.exp(c[keep] - c[keep].max())
        out.append(full / full.sum())
    return np.stack(out)


def softmax64(kept) -> np.ndarray:
    k = np.asarray(kept, np.float64)
    p = np.exp(k - k.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def rows() -> jax.Array:
    "Random, peaked, flat and very negative rows, and one with ties on both sides of the nucleus' boundary."
    rng = np.random.default_rng(0)
    tied = np.array([3.0, 1.0, 1.0, 1.0, 1.0, 0.5, -2.0, 1.0, -1.0, 0.0, 0.0, 3.0, -5.0])
    return jnp.asarray(np.stack([rng.normal(size=V) * 2, rng.normal(size=V) * 6, rng.normal(size=V) * 0.2, tied,
                                 -np.abs(rng.normal(size=V)) - 100.0]), jnp.float32)


STRATEGIES = [dict(temperature=0.7), dict(temperature=1.3, top_k=4), dict(temperature=1.0, top_p=0.8),
              dict(temperature=0.9, top_p=0.5), dict(temperature=1.0, top_k=6, top_p=0.6),
              dict(temperature=2.0, top_p=0.95), dict(temperature=1.0, top_p=0.3), dict(top_k=1)]


@pytest.mark.parametrize("kw", STRATEGIES, ids=str)
def test_previous_implementation_is_the_definition(kw):
    "Anchor: the sorting implementation's kept logits give the float64 definition's probabilities (to 1e-5: float32)."
    np.testing.assert_allclose(softmax64(previous_kept(rows(), **kw)), definition(rows(), **kw), atol=1e-5)


@pytest.mark.parametrize("top_p", [0.05, 0.3, 0.5, 0.8, 0.95, 0.999])
def test_bisection_keeps_the_previous_set(top_p):
    "The cut of whole rows by bisection: the same kept logits as the sort, ties at the boundary by index."
    x = rows()
    np.testing.assert_array_equal(np.asarray(nucleus_threshold(x, top_p)), np.asarray(previous_kept(x, top_p=top_p)))


@pytest.mark.parametrize("top_p", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("bound", [3, 6, 12])
def test_bounded_candidates_keep_the_previous_set_when_they_hold_the_nucleus(top_p, bound):
    "Candidates holding top_p of the mass contain the whole nucleus: the rule on them cuts what the sort cut."
    x = rows()
    candidates, ids = jax.lax.top_k(x, bound)
    kept, mass = nucleus_sorted(candidates, top_p, jax.nn.logsumexp(x, -1, keepdims=True))
    inside = np.asarray(mass >= top_p)
    assert inside.any()
    got = np.full(x.shape, -np.inf)
    np.put_along_axis(got, np.asarray(ids), np.asarray(kept), -1)
    np.testing.assert_allclose(softmax64(got)[inside], softmax64(previous_kept(x, top_p=top_p))[inside], atol=1e-6)


def testinverse_cdf_edges():
    "u = 0 lands on the first token of positive weight; u just below 1 on the last one, never on a weight of 0."
    w = jnp.array([[0.0, 0.0, 1.0, 2.0, 0.0]] * 3)
    u = jnp.array([[0.0], [np.nextafter(np.float32(1), np.float32(0))], [0.34]])
    np.testing.assert_array_equal(np.asarray(inverse_cdf(w, u)), [2, 3, 3])


def frequencies(choose, x, n=DRAWS, seed=7) -> np.ndarray:
    "Token counts of n draws per row, each row a batch of its own (so a branch on the whole batch is per row): [B, V]."
    B, Vx = x.shape
    keys = jax.random.split(jax.random.key(seed), B)
    tokens = jax.jit(jax.vmap(lambda row, k: choose(jnp.repeat(row[None], n, 0), k)))(x, keys)
    return np.stack([np.bincount(np.asarray(t), minlength=Vx) for t in tokens])


def assert_follows(counts, p, n=DRAWS):
    "Nothing drawn where p is 0; a chi-square goodness of fit that a wrong distribution fails (p-value > 1e-6)."
    for c, q in zip(counts, p):
        assert np.all(c[q == 0] == 0), "drew a token the rules exclude"
        live = q > 0
        if live.sum() < 2: continue
        assert stats.chisquare(c[live], q[live] * n).pvalue > 1e-6, (c[live] / n, q[live])


def test_draw_over_several_blocks():
    "`draw` alone over V = 1,100 (three blocks of 512, the last padded) with -inf entries."
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 1100)) * 2
    x[0, ::3] = -np.inf
    x = jnp.asarray(x, jnp.float32)
    assert_follows(frequencies(lambda l, k: draw(k, l), x, 200_000), softmax64(x), 200_000)


def test_draw_can_fail():
    "The bound above has teeth: the draws of a distribution 2% off are refused."
    x = rows()[:1]
    counts = frequencies(lambda l, k: draw(k, l), x)
    wrong = softmax64(x * 1.02)
    with pytest.raises(AssertionError):
        assert_follows(counts, wrong)


@pytest.mark.parametrize("kw", STRATEGIES, ids=str)
@pytest.mark.parametrize("bound, tries", [(2, 0), (12, 0), (256, 4), (2, 4)],
                         ids=["bound2", "bound12", "bound256", "rejection-then-bound2"])
def test_sampling_draws_from_the_previous_distribution(kw, bound, tries):
    """Per strategy and path: top_p alone through 2 or 12 candidates (or bisection where they miss it), or all V;
    by rejection first (4 rounds), the draws that never landed through 2 candidates or bisection."""
    x = rows()
    counts = frequencies(Sampling(**kw, tries=tries, bound=bound).choose, x)
    assert_follows(counts, softmax64(previous_kept(x, **kw)))


def test_the_previous_implementation_passes_the_same_check():
    "The same check on the sorting implementation's own draws (so the check compares like with like)."
    x = rows()
    for kw in STRATEGIES[:3]:
        counts = frequencies(lambda l, k: previous_choose(l, k, **kw), x)
        assert_follows(counts, softmax64(previous_kept(x, **kw)))


@pytest.mark.parametrize("tries", [0, 4], ids=["bisection", "rejection"])
def test_equal_logits_through_bisection(tries):
    """A flat row: 3 candidates hold 3/13 < 0.9, so bisection; 12 of the 13 equal tokens stay, the lowest indices.
    By rejection, a draw of the 13th is ranked after 12/13 > 0.9 and refused."""
    flat = jnp.zeros((1, V), jnp.float32)
    counts = frequencies(Sampling(top_p=0.9, tries=tries, bound=3).choose, flat)
    assert_follows(counts, np.full((1, V), 1 / 12) * (np.arange(V) < 12))  # 12 of 13 equal tokens: ties by index


def equations(closed):
    "Every equation of a closed jaxpr, its sub-jaxprs' (cond branches, loops, inner jits) included."
    for eqn in closed.jaxpr.eqns:
        yield eqn
        for p in eqn.params.values():
            for sub in p if isinstance(p, (list, tuple)) else [p]:
                if hasattr(sub, "jaxpr") and hasattr(sub, "consts"): yield from equations(sub)


@pytest.mark.parametrize("strategy", [Sampling(1.0), Sampling(0.7, top_p=0.9), Sampling(1.0, top_k=40),
                                      Sampling(1.0, top_k=40, top_p=0.9), Greedy()], ids=str)
def test_never_sorts_the_vocabulary(strategy):
    "At PaliGemma's vocabulary the program holds no sort (and no V-length random numbers): a partial top_k at most."
    logits = jax.ShapeDtypeStruct((8, 257_152), jnp.float32)
    eqns = list(equations(jax.make_jaxpr(lambda l, k: sample_logits(l, k, strategy))(logits, jax.random.key(0))))
    ops = {e.primitive.name for e in eqns}
    assert "sort" not in ops and "argsort" not in ops, sorted(ops)
    if isinstance(strategy, Sampling) and (strategy.top_k or strategy.top_p): assert "top_k" in ops, sorted(ops)
    random_numbers = [int(np.prod(e.outvars[0].aval.shape)) for e in eqns if e.primitive.name == "random_bits"]
    assert max(random_numbers, default=0) <= 16, random_numbers  # two uniforms per row at most


def test_bad_settings():
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="bound must be an int >= 1"): Sampling(top_p=0.9, bound=bad)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="tries must be an int >= 0"): Sampling(top_p=0.9, tries=bad)
    assert isinstance(Sampling(), Strategy) and len(jax.tree.leaves(Sampling(0.7, 50, 0.9, bound=64))) == 2


@pytest.mark.parametrize("V", [257_152, 1_664, 1_000])
def test_top_k_in_two_levels_equals_one_selection(V):
    "`top_k` against `jax.lax.top_k` over the whole row: the same values and indices, with ties and -inf rows too."
    rng = np.random.default_rng(V)
    x = np.concatenate([rng.normal(size=(2, V)) * 20, rng.integers(0, 3, size=(2, V)), np.full((1, V), -np.inf)])
    x = jnp.asarray(x, jnp.float32)
    for k in (1, 5, 40, 256):
        want, got = jax.lax.top_k(x, k), jax.jit(top_k, static_argnums=1)(x, k)
        np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
        np.testing.assert_array_equal(np.asarray(got[1]), np.asarray(want[1]))
