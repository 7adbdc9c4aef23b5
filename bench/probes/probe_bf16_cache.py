"A bfloat16 cache under float32 compute: cast the cache up (as today) or the queries down?"
import sys; sys.path.insert(0, "bench")
import jax, jax.numpy as jnp
import hlo_bytes as hb
B, S, K, G, H = 8, 8192, 4, 2, 256
sd = jax.ShapeDtypeStruct
def up(q, k, v):  # today: the cache cast to the compute dtype
    k, v = k.astype(q.dtype), v.astype(q.dtype)
    w = jax.nn.softmax(jnp.einsum("BTKGH,BKSH->BKGTS", q, k), -1)
    return jnp.einsum("BKGTS,BKSH->BTKGH", w, v)
def down(q, k, v):  # queries and weights cast to the cache's dtype, float32 accumulation
    w = jax.nn.softmax(jnp.einsum("BTKGH,BKSH->BKGTS", q.astype(k.dtype), k, preferred_element_type=jnp.float32), -1)
    return jnp.einsum("BKGTS,BKSH->BTKGH", w.astype(v.dtype), v, preferred_element_type=jnp.float32)
cache = 2 * B * K * S * H * 2
for name, f in (("cast cache up", up), ("cast queries down", down)):
    c = jax.jit(f).lower(sd((B, 1, K, G, H), jnp.float32), sd((B, K, S, H), jnp.bfloat16), sd((B, K, S, H), jnp.bfloat16)).compile()
    b, moves, _ = hb.walk(c.as_text())
    print(f"{name}: moved {b/cache:.2f}x the bfloat16 cache; " + "; ".join(hb.report(moves, 16 << 20)))
def mixed(q, k, v):  # float32 queries against the bfloat16 cache, no cast in jax
    lg = jax.lax.dot_general(q[:, 0], k, (((3,), (3,)), ((0, 1), (0, 1))), preferred_element_type=jnp.float32)  # [B,K,G,S]
    w = jax.nn.softmax(lg, -1)
    return jax.lax.dot_general(w, v, (((3,), (2,)), ((0, 1), (0, 1))), preferred_element_type=jnp.float32)
try:
    c = jax.jit(mixed).lower(sd((B, 1, K, G, H), jnp.float32), sd((B, K, S, H), jnp.bfloat16), sd((B, K, S, H), jnp.bfloat16)).compile()
    b, moves, _ = hb.walk(c.as_text())
    print(f"mixed dot_general: moved {b/cache:.2f}x; " + "; ".join(hb.report(moves, 16 << 20)))
except Exception as e: print("mixed:", type(e).__name__, str(e)[:200])
