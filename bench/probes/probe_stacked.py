import sys; sys.path.insert(0, "bench")
import jax, jax.numpy as jnp
import hlo_bytes as hb
B, S, K, G, H, L = 8, 8192, 4, 2, 256, 4
f32 = jnp.float32
sd = lambda *s: jax.ShapeDtypeStruct(s, f32)
cache = 2 * L * B * S * K * H * 4

def attn_dot(q, k, v):
    lg = jnp.einsum("BTKGH,BKSH->BKGTS", q, k)
    w = jax.nn.softmax(lg, -1)
    return jnp.einsum("BKGTS,BKSH->BTKGH", w, v)

def attn_reduce(q, k, v):
    lg = jnp.sum(q[:, 0, :, :, None, :] * k[:, :, None], -1)
    w = jax.nn.softmax(lg, -1)
    return jnp.sum(w[..., None] * v[:, :, None], -2)[:, None]

def show(name, c):
    b, moves, notes = hb.walk(c.as_text())
    m = c.memory_analysis()
    print(f"{name:22} cost {c.cost_analysis()['bytes accessed']/cache:.2f}x walk {b/cache:.2f}x temp {m.temp_size_in_bytes/1e6:.0f} MB alias {m.alias_size_in_bytes/1e6:.0f} MB {notes}")
    for line in hb.report(moves): print("   ", line)

def scan_carry(attn):
    def step(q, kc, vc, nk, nv, i):  # kc [L,B,K,S,H]; nk [L? no: per layer new from q]
        def body(carry, l):
            x, kc, vc = carry
            z = jnp.int32(0)
            kc = jax.lax.dynamic_update_slice(kc, (x[:, 0, :, 0, None, :] + nk[0])[None], (l, z, z, i, z))
            vc = jax.lax.dynamic_update_slice(vc, (x[:, 0, :, 0, None, :] + nv[0])[None], (l, z, z, i, z))
            k = jax.lax.dynamic_index_in_dim(kc, l, 0, keepdims=False)
            v = jax.lax.dynamic_index_in_dim(vc, l, 0, keepdims=False)
            return (attn(x, k, v), kc, vc), None
        (x, kc, vc), _ = jax.lax.scan(body, (q, kc, vc), jnp.arange(L))
        return x, kc, vc
    return step

def unrolled(attn):
    def step(q, kc, vc, nk, nv, i):
        x = q
        for l in range(L):
            z = jnp.int32(0)
            kc = jax.lax.dynamic_update_slice(kc, (x[:, 0, :, 0, None, :] + nk[0])[None], (jnp.int32(l), z, z, i, z))
            vc = jax.lax.dynamic_update_slice(vc, (x[:, 0, :, 0, None, :] + nv[0])[None], (jnp.int32(l), z, z, i, z))
            x = attn(x, kc[l], vc[l])
        return x, kc, vc
    return step

def tuple_cache(attn):  # per-layer arrays, unrolled
    def step(q, kc, vc, nk, nv, i):
        x, ks, vs = q, [], []
        for l in range(L):
            z = jnp.int32(0)
            k = jax.lax.dynamic_update_slice(kc[l], (x[:, 0, :, 0, None, :] + nk[0]), (z, z, i, z))
            v = jax.lax.dynamic_update_slice(vc[l], (x[:, 0, :, 0, None, :] + nv[0]), (z, z, i, z))
            x = attn(x, k, v); ks.append(k); vs.append(v)
        return x, tuple(ks), tuple(vs)
    return step

args = (sd(B, 1, K, G, H), sd(L, B, K, S, H), sd(L, B, K, S, H), sd(1, B, K, 1, H), sd(1, B, K, 1, H), jax.ShapeDtypeStruct((), jnp.int32))
for name, mk in [("scan_carry", scan_carry), ("unrolled_static", unrolled)]:
    for an, attn in [("dot", attn_dot), ("reduce", attn_reduce)]:
        show(f"{name}/{an}", jax.jit(mk(attn), donate_argnums=(1, 2)).lower(*args).compile())
targs = (sd(B, 1, K, G, H), (sd(B, K, S, H),) * L, (sd(B, K, S, H),) * L, sd(1, B, K, 1, H), sd(1, B, K, 1, H), jax.ShapeDtypeStruct((), jnp.int32))
show("tuple/dot", jax.jit(tuple_cache(attn_dot), donate_argnums=(1, 2)).lower(*targs).compile())
