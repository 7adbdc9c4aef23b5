import sys; sys.path.insert(0, "bench")
import jax, jax.numpy as jnp
import hlo_bytes as hb
B, S, K, G, H, L = 8, 8192, 4, 2, 256, 4
f32 = jnp.float32
sd = lambda *s: jax.ShapeDtypeStruct(s, f32)

def attn_default(q, k, v):  # q [B,1,K,G,H], k,v [B,S,K,H]
    lg = jnp.einsum("BTKGH,BSKH->BKGTS", q, k)
    w = jax.nn.softmax(lg, -1)
    return jnp.einsum("BKGTS,BSKH->BTKGH", w, v)

def attn_bksh(q, k, v):  # k,v [B,K,S,H]
    lg = jnp.einsum("BTKGH,BKSH->BKGTS", q, k)
    w = jax.nn.softmax(lg, -1)
    return jnp.einsum("BKGTS,BKSH->BTKGH", w, v)

def attn_bksh_klhs(q, k, v):  # k as lhs of the logits dot
    lg = jnp.einsum("BKSH,BTKGH->BKSTG", k, q)
    w = jax.nn.softmax(lg, -3)
    return jnp.einsum("BKSTG,BKSH->BTKGH", w, v)

def attn_bkhs(q, k, v):  # k [B,K,H,S], v [B,K,S,H]
    lg = jnp.einsum("BTKGH,BKHS->BKGTS", q, k)
    w = jax.nn.softmax(lg, -1)
    return jnp.einsum("BKGTS,BKSH->BTKGH", w, v)

def attn_reduce(q, k, v):  # elementwise multiply + reduce, k,v [B,K,S,H]
    lg = jnp.sum(q[:, 0, :, :, None, :] * k[:, :, None], -1)  # [B,K,G,S]
    w = jax.nn.softmax(lg, -1)
    return jnp.sum(w[..., None] * v[:, :, None], -2)[:, None]  # [B,1,K,G,H]

def run(name, fn, kshape, vshape):
    def f(q, k, v, newk, newv, idx):
        k = jax.lax.dynamic_update_slice(k, newk, (0,) * (len(kshape) - 1) + (0,) if False else idx(kshape))
        return fn(q, k, v)
    q = sd(B, 1, K, G, H)
    def step(q, k, v, nk, nv, i):
        z = jnp.int32(0)
        ks = [z] * 4; ks[kshape.index(S)] = i
        vs = [z] * 4; vs[vshape.index(S)] = i
        k = jax.lax.dynamic_update_slice(k, nk, ks)
        v = jax.lax.dynamic_update_slice(v, nv, vs)
        return fn(q, k, v), k, v
    nk = sd(*[1 if d == S else d for d in kshape]); nv = sd(*[1 if d == S else d for d in vshape])
    c = jax.jit(step, donate_argnums=(1, 2)).lower(q, sd(*kshape), sd(*vshape), nk, nv, jax.ShapeDtypeStruct((), jnp.int32)).compile()
    ca = c.cost_analysis()["bytes accessed"]
    b, moves, _ = hb.walk(c.as_text())
    cache = 2 * B * S * K * H * 4
    m = c.memory_analysis()
    print(f"{name:16} cost {ca/cache:.2f}x walk {b/cache:.2f}x  temp {m.temp_size_in_bytes/1e6:.0f} MB alias {m.alias_size_in_bytes/1e6:.0f} MB")
    for line in hb.report(moves): print("   ", line)
    return c

run("default", attn_default, (B, S, K, H), (B, S, K, H))
run("bksh", attn_bksh, (B, K, S, H), (B, K, S, H))
run("bksh_klhs", attn_bksh_klhs, (B, K, S, H), (B, K, S, H))
c = run("bkhs", attn_bkhs, (B, K, H, S), (B, K, S, H))
run("reduce", attn_reduce, (B, K, S, H), (B, K, S, H))
