"Probe (issue 26, prefill at batch 8): see bench/RESULTS.md \"Prefill at batch 8 on a quiet host\"."
import time, numpy as np, jax, jax.numpy as jnp
def tm(f,*a,rep=9):
    f(*a); ts=[]
    for _ in range(rep):
        t=time.perf_counter(); jax.block_until_ready(f(*a)); ts.append(time.perf_counter()-t)
    return 1e3*np.median(ts)
M,D,F,N,H=2176,512,2048,8,64
r=np.random.default_rng(0)
x=jnp.asarray(r.standard_normal((M,D),np.float32))
wg=jnp.asarray(r.standard_normal((2,D,F),np.float32)); wl=jnp.asarray(r.standard_normal((F,D),np.float32)/40)
wq=jnp.asarray(r.standard_normal((N,D,H),np.float32))
bd=lambda x,w:jax.lax.dot_general(jnp.broadcast_to(x[None],(w.shape[0],*x.shape)),w,(((2,),(1,)),((0,),(0,))))
es=lambda x,w:jnp.einsum('MD,GDE->GME',x,w)
def ffw(mm):
    def f(x,wg,wl):
        g,u=mm(x,wg); return (jax.nn.gelu(g)*u)@wl
    return f
def ffw_mge(x,wg,wl):
    h=jnp.einsum('MD,GDE->MGE',x,wg); return (jax.nn.gelu(h[:,0])*h[:,1])@wl
def ffw_two(x,wg,wl):
    return (jax.nn.gelu(x@wg[0])*(x@wg[1]))@wl
res={}
res['q einsum']=tm(jax.jit(es),x,wq); res['q bcast']=tm(jax.jit(bd),x,wq)
for n,f in [('ffw einsum',ffw(es)),('ffw bcast',ffw(bd)),('ffw MGE',ffw_mge),('ffw two dots',ffw_two)]: res[n]=tm(jax.jit(f),x,wg,wl)
res['gelu*u only']=tm(jax.jit(lambda g,u:jax.nn.gelu(g)*u),jnp.ones((M,F)),jnp.ones((M,F)))
res['linear']=tm(jax.jit(lambda h,w:h@w),jnp.ones((M,F)),wl)
for kk,v in res.items(): print(f'{kk:20s} {v:8.2f} ms')
