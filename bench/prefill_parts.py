"""Where prefill time goes: our ViT and decoder prefill beside transformers' vision tower and language model.

Run: python bench/prefill_parts.py [--config paligemma-bench-small] [--batch 8] [--layers default|stacked|list]
Same random weights in both; each part timed alone (median of 5 after a warm-up), ours compiled, transformers with
`torch.set_num_threads(2)`. The decoder part is a prefill of 256 image + 16 text tokens into a cache with room for
31 more (what `bench/generate.py` prefills); transformers' runs its language model with `use_cache=True`.
"""
from __future__ import annotations
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import config_for, hf_model_for, random_inputs  # noqa: E402


def median_ms(f, n: int = 5) -> float:
    f()
    times = []
    for _ in range(n):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paligemma-bench-small")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--layers", choices=["default", "stacked", "list"], default="default")
    args = ap.parse_args()
    import jax, jax.numpy as jnp, torch
    from flax import nnx
    from paligemma.formats.hf import model_from_hf
    from paligemma.gemma.cache import KVCache, prefill
    torch.set_num_threads(2)
    config = config_for(args.config)
    if args.layers != "default": config = config.replace(llm=config.llm.replace(stack_layers=args.layers == "stacked"))
    hf = hf_model_for(config)
    model = model_from_hf({k: v.numpy() for k, v in hf.state_dict().items()}, config)
    B = args.batch
    images, tokens = random_inputs(config, B, 16)
    P, L = config.num_image_tokens, tokens.shape[1]
    graphdef, state = nnx.split(model)
    vit = jax.jit(lambda s, im: nnx.merge(graphdef, s).embed_image(im))

    def llm_prefill(s, x, positions, mask):
        cache = KVCache.create(config.llm, B, P + L + 31)
        return prefill(nnx.merge(graphdef, s).llm, x, positions, mask, jnp.full((B,), P + L - 1), cache)[0]

    llm = jax.jit(llm_prefill)
    embed = jax.jit(lambda s, im, t: nnx.merge(graphdef, s).embed(im, t, jnp.ones(t.shape, bool),
                                                                  jnp.zeros(t.shape, jnp.int32)))
    x, mask, positions = embed(state, images, tokens)
    pixels = torch.tensor(images.transpose(0, 3, 1, 2))
    with torch.no_grad():
        embeds = hf.model.get_input_embeddings()(torch.tensor(tokens, dtype=torch.long))
        embeds = torch.cat([hf.model.get_image_features(pixels).pooler_output, embeds], 1)
        rows = {
            "ViT (+ projection)": (median_ms(lambda: vit(state, images).block_until_ready()),
                                   median_ms(lambda: hf.model.get_image_features(pixels))),
            "decoder prefill": (median_ms(lambda: llm(state, x, positions, mask).block_until_ready()),
                                median_ms(lambda: hf.model.language_model(inputs_embeds=embeds, use_cache=True))),
        }
    print(f"\nPrefill parts, `{args.config}`, batch {B}, layers {'list' if not config.llm.stacked else 'stacked'}\n")
    print("| part | ours (ms) | transformers (ms) | ratio |\n|---|---|---|---|")
    for name, (o, h) in rows.items(): print(f"| {name} | {o:.0f} | {h:.0f} | {h / o:.2f}x |")


if __name__ == "__main__":
    main()
