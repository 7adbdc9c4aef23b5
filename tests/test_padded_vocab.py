"""A model whose vocabulary is padded beyond its tokenizer's never emits a padded id.

The shipped tiny model has 1,664 embedding rows for a tokenizer of 1,604 pieces (rounded up to a multiple of 64).
Sampled hot enough, an unrestricted sampler draws ids past the tokenizer, which cannot decode them; the sampler made
with the tokenizer chooses among the tokenizer's ids only, whatever the strategy."""
import importlib.resources
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from paligemma.formats.bigvision import load_npz
from paligemma.sampler import Sampler, Sampling
from paligemma.tokenizer import Tokenizer

ASSETS = Path(str(importlib.resources.files("paligemma"))) / "assets"


@pytest.fixture(scope="module")
def tiny():
    model, tok = load_npz(ASSETS / "shapes_tiny.npz", dtype=jnp.float32), Tokenizer(ASSETS / "shapes.model")
    assert model.config.llm.vocab_size > tok.vocab_size  # the case under test: 1664 > 1604
    return model, tok


def _hot(sampler, model, n=32, **kw):
    "n examples of 24 tokens each, drawn at temperature 50 from a random image: nearly uniform over the vocabulary."
    S = model.config.image_size
    images = np.random.default_rng(0).uniform(-1, 1, (n, S, S, 3)).astype(np.float32)
    prompts = np.full((n, 3), 2, np.int32)  # [bos] and padding; the prompt does not matter at this temperature
    return np.asarray(sampler.generate_tokens(images, prompts, np.full(n, 1), 24, eos_id=None, **kw).tokens)


def test_unrestricted_sampler_draws_padded_ids(tiny):
    "The test below could fail: without the restriction, the same draws reach ids the tokenizer cannot decode."
    model, tok = tiny
    drawn = _hot(Sampler(model, tok, vocab_size=model.config.llm.vocab_size), model, temperature=50.0)
    assert (drawn >= tok.vocab_size).sum() > 0


@pytest.mark.parametrize("strategy", [Sampling(50.0), Sampling(50.0, top_p=0.999), Sampling(50.0, top_k=1604),
                                      Sampling(50.0, top_p=0.999, bound=2)],
                         ids=["temperature", "top_p", "top_k", "top_p_bisection"])
def test_sampler_never_emits_padded_ids(tiny, strategy):
    model, tok = tiny
    sampler = Sampler(model, tok)
    assert sampler.vocab_size == tok.vocab_size
    drawn = _hot(sampler, model, strategy=strategy)
    assert drawn.max() < tok.vocab_size
    assert len(np.unique(drawn)) > 500  # the draws did spread over the vocabulary
    texts = [tok.decode(row) for row in drawn]  # every draw decodes (`decode` raises on an id past the tokenizer)
    assert len(texts) == len(drawn) and sum(map(len, texts)) > 0


def test_greedy_skips_a_padded_maximum(tiny):
    "Greedy too: a padded id made the most likely one (its embedding row 100 times the greedy token's) is skipped."
    model, tok = tiny
    model = nnx.clone(model)
    S = model.config.image_size
    images, prompts = np.zeros((2, S, S, 3), np.float32), np.full((2, 1), 2, np.int32)
    greedy = lambda sampler: np.asarray(sampler.generate_tokens(images, prompts, [1, 1], 1).tokens[:, 0])
    first = greedy(Sampler(model, tok))
    table = model.llm.embedder.input_embedding
    padded = tok.vocab_size + 5
    table[...] = table[...].at[padded].set(100 * table[...][first[0]])
    np.testing.assert_array_equal(greedy(Sampler(model, tok, vocab_size=model.config.llm.vocab_size)), padded)
    np.testing.assert_array_equal(greedy(Sampler(model, tok)), first)


def test_bad_vocab_size(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match=r"vocab_size must be an int in \[1, 1664\]"):
        Sampler(model, tok, vocab_size=2000)
    class Bigger: vocab_size, eos_id = 5000, 1  # a tokenizer larger than the model: the model's ids are all it has
    assert Sampler(model, Bigger()).vocab_size == model.config.llm.vocab_size
    with pytest.raises(ValueError, match=r"top_k must be an int in \[1, 1604\]"):
        S = model.config.image_size
        Sampler(model, tok).generate_tokens(np.zeros((1, S, S, 3), np.float32), [[2]], [1], 2, temperature=1.0, top_k=1664)
