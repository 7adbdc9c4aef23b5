"Probe (issue 26, prefill at batch 8): see bench/RESULTS.md \"Prefill at batch 8 on a quiet host\"."
import time, numpy as np, jax, jax.numpy as jnp, torch
torch.set_num_threads(2)
from paligemma.gemma.layers import Attention, FeedForward, stacked_matmul
from paligemma.nn import attend
from flax import nnx
B,T,D,N,K,H,F=8,272,512,8,1,64,2048
M=B*T
def tm(f,*a,rep=7):
    f(*a); ts=[]
    for _ in range(rep):
        t=time.perf_counter(); r=f(*a); jax.block_until_ready(r) if not isinstance(r,torch.Tensor) else None; ts.append(time.perf_counter()-t)
    return 1e3*np.median(ts)
r=np.random.default_rng(0)
x=jnp.asarray(r.standard_normal((M,D),np.float32))
wq=jnp.asarray(r.standard_normal((N,D,H),np.float32))
wq2=wq.transpose(1,0,2).reshape(D,N*H)
wg=jnp.asarray(r.standard_normal((2,D,F),np.float32))
wl=jnp.asarray(r.standard_normal((F,D),np.float32))
wo=jnp.asarray(r.standard_normal((N,H,D),np.float32))
q=jnp.asarray(r.standard_normal((B,T,N,H),np.float32)); kk=jnp.asarray(r.standard_normal((B,K,T,H),np.float32))
mask=jnp.tril(jnp.ones((T,T),bool))[None].repeat(B,0)
res={}
res['q stacked_matmul']=tm(jax.jit(stacked_matmul),x,wq)
res['q one gemm [D,NH]']=tm(jax.jit(lambda x,w:x@w),x,wq2)
res['gating stacked']=tm(jax.jit(stacked_matmul),x,wg)
res['gating one gemm']=tm(jax.jit(lambda x,w:x@w),x,wg.transpose(1,0,2).reshape(D,2*F))
res['ffw full']=tm(jax.jit(lambda x,wg,wl:(jax.nn.gelu(stacked_matmul(x,wg)[0])*stacked_matmul(x,wg)[1])@wl),x,wg,wl)
res['linear']=tm(jax.jit(lambda h,w:h@w),jnp.ones((M,F)),wl)
res['attend']=tm(jax.jit(lambda q,k,v,m:attend(q,k,v,m)[0]),q,kk,kk,mask)
res['attn_vec NHD']=tm(jax.jit(lambda e,w:jnp.einsum('MNH,NHD->MD',e,w)),q.reshape(M,N,H),wo)
res['attn_vec gemm']=tm(jax.jit(lambda e,w:e@w),q.reshape(M,N*H),wo.reshape(N*H,D))
tx=torch.randn(M,D); tq=torch.randn(N*H,D); tg=torch.randn(2*F,D); tl=torch.randn(D,F)
with torch.no_grad():
  res['torch q']=tm(lambda:torch.nn.functional.linear(tx,tq))
  res['torch gating']=tm(lambda:torch.nn.functional.linear(tx,tg))
  res['torch linear']=tm(lambda:torch.nn.functional.linear(torch.ones(M,F),tl))
  tq4=torch.randn(B,N,T,H); tk4=torch.randn(B,N,T,H)
  res['torch sdpa']=tm(lambda:torch.nn.functional.scaled_dot_product_attention(tq4,tk4,tk4,is_causal=True))
for k,v in res.items(): print(f'{k:24s} {v:8.2f} ms')
