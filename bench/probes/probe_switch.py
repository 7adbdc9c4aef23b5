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

def show(name, c):
    b, moves, notes = hb.walk(c.as_text())
    m = c.memory_analysis()
    print(f"{name:22} cost {c.cost_analysis()['bytes accessed']/cache:.2f}x walk {b/cache:.2f}x temp {m.temp_size_in_bytes/1e6:.0f} MB alias {m.alias_size_in_bytes/1e6:.0f} MB {notes}")
    for line in hb.report(moves): print("   ", line)

def switch_step(q, kc, vc, nk, nv, i):  # kc, vc: tuples of L [B,K,S,H]
    z = jnp.int32(0)
    def body(carry, l):
        x, kc, vc = carry
        def branch(j):
            def f(x, kc, vc):
                k = jax.lax.dynamic_update_slice(kc[j], x[:, 0, :, 0, None, :] + nk[0], (z, z, i, z))
                v = jax.lax.dynamic_update_slice(vc[j], x[:, 0, :, 0, None, :] + nv[0], (z, z, i, z))
                kc = kc[:j] + (k,) + kc[j + 1:]; vc = vc[:j] + (v,) + vc[j + 1:]
                return attn_dot(x, k, v), kc, vc
            return f
        x, kc, vc = jax.lax.switch(l, [branch(j) for j in range(L)], x, kc, vc)
        return (x, kc, vc), None
    (x, kc, vc), _ = jax.lax.scan(body, (q, kc, vc), jnp.arange(L))
    return x, kc, vc

targs = (sd(B, 1, K, G, H), (sd(B, K, S, H),) * L, (sd(B, K, S, H),) * L, sd(1, B, K, 1, H), sd(1, B, K, 1, H), jax.ShapeDtypeStruct((), jnp.int32))
c = jax.jit(switch_step, donate_argnums=(1, 2)).lower(*targs).compile()
show("switch", c)
open("/tmp/switch.txt", "w").write(c.as_text())
c = jax.jit(switch_step, donate_argnums=(1, 2), compiler_options={"xla_cpu_copy_insertion_use_region_analysis": True}).lower(*targs).compile()
show("switch+region", c)
