import sys, time; sys.path.insert(0, "bench")
import jax, jax.numpy as jnp, numpy as np
import hlo_bytes as hb
B, S, K, G, H, L = 8, 8192, 4, 2, 256, 4
if len(sys.argv) > 1: S = int(sys.argv[1])
f32 = jnp.float32
sd = lambda *s: jax.ShapeDtypeStruct(s, f32)
cache = 2 * L * B * S * K * H * 4

def show(name, c):
    b, moves, notes = hb.walk(c.as_text())
    m = c.memory_analysis()
    print(f"{name:22} cost {c.cost_analysis()['bytes accessed']/cache:.2f}x walk {b/cache:.2f}x temp {m.temp_size_in_bytes/1e6:.0f} MB alias {m.alias_size_in_bytes/1e6:.0f} MB {notes}")
    for line in hb.report(moves): print("   ", line)

def attn_parts_reduce(q, k, v, kn, vn):
    # q [B,K,G,H]; k,v [B,K,S,H] old cache (slot of the new token not yet written); kn, vn [B,K,H]
    lg = jnp.einsum("BKGH,BKSH->BKGS", q, k) if False else jnp.sum(q[:, :, :, None, :] * k[:, :, None], -1)
    ln = jnp.sum(q * kn[:, :, None], -1)  # [B,K,G]
    m = jnp.maximum(lg.max(-1), ln)
    p = jnp.exp(lg - m[..., None]); pn = jnp.exp(ln - m)
    den = p.sum(-1) + pn
    out = jnp.sum(p[..., None] * v[:, :, None], -2) + pn[..., None] * vn[:, :, None]
    return out / den[..., None]

def attn_parts_dot(q, k, v, kn, vn):
    lg = jnp.einsum("BKGH,BKSH->BKGS", q, k)
    ln = jnp.sum(q * kn[:, :, None], -1)
    m = jnp.maximum(lg.max(-1), ln)
    p = jnp.exp(lg - m[..., None]); pn = jnp.exp(ln - m)
    den = p.sum(-1) + pn
    out = jnp.einsum("BKGS,BKSH->BKGH", p, v) + pn[..., None] * vn[:, :, None]
    return out / den[..., None]

def scan_rbw(attn):
    def step(q, kc, vc, i):
        z = jnp.int32(0)
        def body(carry, l):
            x, kc, vc = carry
            kn = x[:, :, 0] * 1.5; vn = x[:, :, 1] * 0.5
            k = jax.lax.dynamic_index_in_dim(kc, l, 0, keepdims=False)
            v = jax.lax.dynamic_index_in_dim(vc, l, 0, keepdims=False)
            x = attn(x, k, v, kn, vn)
            kc = jax.lax.dynamic_update_slice(kc, kn[None, :, :, None], (l, z, z, i, z))
            vc = jax.lax.dynamic_update_slice(vc, vn[None, :, :, None], (l, z, z, i, z))
            return (x, kc, vc), None
        (x, kc, vc), _ = jax.lax.scan(body, (q, kc, vc), jnp.arange(L))
        return x, kc, vc
    return step

args = (sd(B, K, G, H), sd(L, B, K, S, H), sd(L, B, K, S, H), jax.ShapeDtypeStruct((), jnp.int32))
fs = {}
for an, attn in [("dot", attn_parts_dot), ("reduce", attn_parts_reduce)]:
    fs[an] = jax.jit(scan_rbw(attn), donate_argnums=(1, 2))
    c = fs[an].lower(*args).compile()
    show(f"scan_rbw/{an}", c)
if S <= 2048:
    q = jnp.ones((B, K, G, H)); kc = jnp.asarray(np.random.rand(L, B, K, S, H).astype(np.float32)); vc = kc + 1
    outs = {}
    for an, f in fs.items():
        kc2, vc2 = kc + 0, vc + 0
        x, kc2, vc2 = f(q, kc2, vc2, jnp.int32(5)); jax.block_until_ready(x)
        ts = []
        for _ in range(5):
            t = time.perf_counter(); x, kc2, vc2 = f(q, kc2, vc2, jnp.int32(5)); jax.block_until_ready(x); ts.append(time.perf_counter() - t)
        outs[an] = x
        print(an, f"{np.median(ts)*1e3:.1f} ms; cache {cache/1e6:.0f} MB")
    print(np.abs(outs["dot"] - outs["reduce"]).max())
