"""The real `Sampler`'s compiled generation: does its `while_loop` body copy the KV cache or a weight slice?

Run: python bench/sampler_loop_copies.py   (from the repository root; big_vision's pg2_tiny config, random weights)

Compiles `Sampler._compiled` from the model as `Sampler` does (greedy, 64 new tokens, batch 4) in both layer layouts
and walks the optimized HLO (`bench/hlo_bytes.py`): the moves (copies, transposes, slices, ...) in the loop bodies,
the ones of a cache buffer's size, and the fusions that update a cache buffer in place (rooted at
`dynamic-update-slice`).
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import jax, jax.numpy as jnp
from flax import nnx
import hlo_bytes
from paligemma.model import PaliGemma, PaliGemmaConfig
from paligemma.sampler import Sampler, Greedy, pad_prompts, cache_length
from paligemma.formats.bigvision import read_config
base = read_config(Path("reference/bigvision/pg2_tiny"))
B = 4
for stack in (False, True):
    cfg = base.replace(llm=base.llm.replace(stack_layers=stack))
    model = PaliGemma(cfg, rngs=nnx.Rngs(0))
    s = Sampler(model, cache_dtype=jnp.float32)
    args = (jnp.zeros((B, cfg.image_size, cfg.image_size, 3)), pad_prompts(jnp.ones((B, 7), jnp.int32), 16), jnp.full((B,), 7, jnp.int32))
    text = s._compiled.lower(*nnx.split(model), *args, jax.random.key(0), Greedy(), max_new_tokens=64, eos_id=-1,
                             cache_dtype=jnp.float32, return_logits=False).compile().as_text()
    comps, entry = hlo_bytes.parse(text)
    bodies = {i.called("body") for c in comps.values() for i in c if i.opcode == "while"}
    c = cfg.llm; S = cache_length(cfg, 16, 64)
    layer = B * c.num_kv_heads * S * c.head_dim * 4
    moves = [m for m in hlo_bytes.walk(text)[1] if m.computation in bodies]
    cache_moves = [m for m in moves if m.nbytes in (layer, c.depth * layer)]
    dus = [i for b in bodies for i in comps[b] if i.opcode == "fusion" and i.nbytes == layer and hlo_bytes.root_op(comps, i) == "dynamic-update-slice"]
    print(f"stack_layers={stack}: while bodies {len(bodies)}, cache-sized moves in the body {len(cache_moves)}, in-place cache updates {len(dus)}, all moves in body >=1 buffer: {sorted({(m.kind, m.nbytes) for m in moves})[:8]}")
