"Probe (issue 26, prefill at batch 8): see bench/RESULTS.md \"Prefill at batch 8 on a quiet host\"."
import time, numpy as np, jax, jax.numpy as jnp
def tm(f,*a,rep=9):
    f(*a); ts=[]
    for _ in range(rep):
        t=time.perf_counter(); jax.block_until_ready(f(*a)); ts.append(time.perf_counter()-t)
    return 1e3*np.median(ts)
B,T,D,N,K,H,F=8,272,512,8,1,64,2048; M=B*T; G=N//K
r=np.random.default_rng(0)
x=jnp.asarray(r.standard_normal((M,D),np.float32))
wg=jnp.asarray(r.standard_normal((2,D,F),np.float32))
res={}
res['gating einsum MD,GDE->GME']=tm(jax.jit(lambda x,w:jnp.einsum('MD,GDE->GME',x,w)),x,wg)
res['gating per-g dots']=tm(jax.jit(lambda x,w:jnp.stack([x@w[g] for g in range(w.shape[0])])),x,wg)
res['gating broadcast batch dot']=tm(jax.jit(lambda x,w:jax.lax.dot_general(jnp.broadcast_to(x[None],(2,*x.shape)),w,(((2,),(1,)),((0,),(0,))))),x,wg)
res['gating einsum MD,GDE->MGE']=tm(jax.jit(lambda x,w:jnp.einsum('MD,GDE->MGE',x,w)),x,wg)
res['gating w.T reshape gemm']=tm(jax.jit(lambda x,w:(x@w.transpose(1,0,2).reshape(D,-1)).reshape(M,2,F)),x,wg)
q=jnp.asarray(r.standard_normal((B,T,K,G,H),np.float32)); k=jnp.asarray(r.standard_normal((B,K,T,H),np.float32))
mask=jnp.tril(jnp.ones((T,T),bool))[None].repeat(B,0)
lg=lambda q,k:jnp.einsum("BTKGH,BKSH->BKGTS",q,k,preferred_element_type=jnp.float32)
res['logits einsum']=tm(jax.jit(lg),q,k)
res['logits einsum q pre-transposed']=tm(jax.jit(lambda q,k:jnp.einsum("BKGTH,BKSH->BKGTS",q,k)),q.transpose(0,2,3,1,4),k)
L=lg(q,k)
res['where mask']=tm(jax.jit(lambda L,m:jnp.where(m[:,None,None],L,-1e30)),L,mask)
res['softmax']=tm(jax.jit(lambda L:jax.nn.softmax(L,axis=-1)),L)
res['exp only']=tm(jax.jit(jnp.exp),L)
res['where+softmax']=tm(jax.jit(lambda L,m:jax.nn.softmax(jnp.where(m[:,None,None],L,-1e30),axis=-1)),L,mask)
res['out einsum']=tm(jax.jit(lambda w,v:jnp.einsum("BKGTS,BKSH->BTKGH",w,v)),L,k)
res['out einsum ->BKGTH']=tm(jax.jit(lambda w,v:jnp.einsum("BKGTS,BKSH->BKGTH",w,v)),L,k)
for kk,v in res.items(): print(f'{kk:34s} {v:8.2f} ms')
