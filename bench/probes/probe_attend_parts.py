"Probe (issue 26, prefill at batch 8): see bench/RESULTS.md \"Prefill at batch 8 on a quiet host\"."
import time, statistics, jax, jax.numpy as jnp, numpy as np
def med(f,n=9):
    f(); ts=[]
    for _ in range(n): t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return 1e3*statistics.median(ts)
B,K,G,T,H=8,6,1,256,64
r=np.random.default_rng(0)
q=jnp.asarray(r.standard_normal((B,K,G,T,H),np.float32)); k=jnp.asarray(r.standard_normal((B,K,T,H),np.float32))
f1=jax.jit(lambda q,k:jnp.einsum("BKGTH,BKSH->BKGTS",q,k,preferred_element_type=jnp.float32))
L=f1(q,k)
f2=jax.jit(lambda L:jax.nn.softmax(L,axis=-1))
W=f2(L)
f3=jax.jit(lambda W,v:jnp.einsum("BKGTS,BKSH->BKGTH",W,v))
f4=jax.jit(lambda q,k:jnp.einsum("BKGTS,BKSH->BKGTH",jax.nn.softmax(jnp.einsum("BKGTH,BKSH->BKGTS",q,k),axis=-1),k))
f5=jax.jit(jnp.exp)
def sm2(L):
    m=jax.lax.stop_gradient(L.max(-1,keepdims=True)); e=jnp.exp(L-m); return e/e.sum(-1,keepdims=True)
f6=jax.jit(sm2)
def sm3(L):
    m=L.max(-1,keepdims=True); e=jnp.exp(L-m); return e*(1/e.sum(-1,keepdims=True))
f7=jax.jit(sm3)
for n,f,a in [('logits',f1,(q,k)),('softmax',f2,(L,)),('out',f3,(W,k)),('all',f4,(q,k)),('exp',f5,(L,)),('softmax manual',f6,(L,)),('softmax mul recip',f7,(L,))]:
    print(n, round(med(lambda:jax.block_until_ready(f(*a))),2))
g1=jax.jit(lambda q,k:jnp.einsum("BKGTH,BKSH->BKGTS",q,k))
g2=jax.jit(lambda q,k:jnp.einsum("BKGTH,BKHS->BKGTS",q,jnp.swapaxes(k,-1,-2)))
kt=jnp.swapaxes(k,-1,-2)
g3=jax.jit(lambda q,kt:jnp.einsum("BKGTH,BKHS->BKGTS",q,kt))
g4=jax.jit(lambda q,k:jnp.einsum("BKSH,BKGTH->BKGST",k,q))
g5=jax.jit(lambda q,k:jax.lax.dot_general(q.reshape(B*K,G*T,H),k.reshape(B*K,T,H),(((2,),(2,)),((0,),(0,)))))
for n,f,a in [('no pet',g1,(q,k)),('swap in jit',g2,(q,k)),('kT given',g3,(q,kt)),('k lhs',g4,(q,k)),('dot_general flat',g5,(q,k)),('logits again',f1,(q,k))]:
    print(n, round(med(lambda:jax.block_until_ready(f(*a))),2))
