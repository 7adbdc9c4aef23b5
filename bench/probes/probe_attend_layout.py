"Probe (issue 26, prefill at batch 8): see bench/RESULTS.md \"Prefill at batch 8 on a quiet host\"."
import time, numpy as np, jax, jax.numpy as jnp
from paligemma.nn import attend
def tm(f,*a,rep=9):
    f(*a); ts=[]
    for _ in range(rep):
        t=time.perf_counter(); jax.block_until_ready(f(*a)); ts.append(time.perf_counter()-t)
    return 1e3*np.median(ts)
import sys
B,T,D,N,K,H=8,272,512,8,1,64
if len(sys.argv)>1: B,T,D,N,K,H=[int(a) for a in sys.argv[1:]]
M=B*T; G=N//K
r=np.random.default_rng(0)
q=jnp.asarray(r.standard_normal((B,T,N,H),np.float32)); k=jnp.asarray(r.standard_normal((B,K,T,H),np.float32)); v=k+1
wo=jnp.asarray(r.standard_normal((N,H,D),np.float32))
mask=jnp.tril(jnp.ones((T,T),bool))[None].repeat(B,0)
def cur(q,k,v,m,w):
    e,_=attend(q,k,v,m); return jnp.einsum('MNH,NHD->MD',e.reshape(M,N,H),w)
def alt(q,k,v,m,w):
    qq=q.reshape(B,T,K,G,H).transpose(0,2,3,1,4)  # BKGTH
    L=jnp.einsum("BKGTH,BKSH->BKGTS",qq,k,preferred_element_type=jnp.float32)
    L=jnp.where(m[:,None,None],L,-2.3819763e38)
    W=jax.nn.softmax(L,axis=-1)
    o=jnp.einsum("BKGTS,BKSH->BKGTH",W,v)
    o=o.transpose(0,3,1,2,4).reshape(M,N*H)
    return o@w.reshape(N*H,D)
def alt2(q,k,v,m,w):
    qq=q.reshape(B,T,K,G,H).transpose(0,2,3,1,4)
    L=jnp.einsum("BKGTH,BKSH->BKGTS",qq,k,preferred_element_type=jnp.float32)
    L=jnp.where(m[:,None,None],L,-2.3819763e38)
    W=jax.nn.softmax(L,axis=-1)
    o=jnp.einsum("BKGTS,BKSH->BKGTH",W,v)
    return jnp.einsum("BKGTH,KGHD->BTD",o,w.reshape(K,G,H,D)).reshape(M,D)
a=jax.jit(cur)(q,k,v,mask,wo); b=jax.jit(alt)(q,k,v,mask,wo); c=jax.jit(alt2)(q,k,v,mask,wo)
print('maxdiff',float(jnp.abs(a-b).max()),float(jnp.abs(a-c).max()), float(jnp.abs(a).max()))
for n,f in [('current',cur),('alt gemm',alt),('alt einsum',alt2)]: print(n, round(tm(jax.jit(f),q,k,v,mask,wo),2),'ms')
