"Probe (issue 26, prefill at batch 8): see bench/RESULTS.md \"Prefill at batch 8 on a quiet host\"."
import sys, time, statistics
sys.path.insert(0,str(__import__('pathlib').Path(__file__).resolve().parents[1]))
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
import paligemma.gemma.layers as GL, paligemma.nn as NN, paligemma.vit.model as VM
from paligemma.nn import K_MASK
variant=sys.argv[1:]
orig_sm=GL.stacked_matmul
def sm_perg(x,w,preferred_element_type=None):
    G,D,E=w.shape
    if x.shape[0] < E: return orig_sm(x,w,preferred_element_type)
    return jnp.stack([jnp.matmul(x,w[g],preferred_element_type=preferred_element_type) for g in range(G)])
def sm_perg_big(x,w,preferred_element_type=None):
    G,D,E=w.shape
    if x.shape[0] >= E and E >= 256:
        return jnp.stack([jnp.matmul(x,w[g],preferred_element_type=preferred_element_type) for g in range(G)])
    return orig_sm(x,w,preferred_element_type)
def attend2(q,k,v,mask,*,softcap=None):
    B,T,N,H=q.shape; K=k.shape[1]
    q=q.reshape(B,T,K,N//K,H).transpose(0,2,3,1,4)
    wide=jnp.promote_types(q.dtype,k.dtype); k,v=k.astype(wide),v.astype(wide)
    logits=jnp.einsum("BKGTH,BKSH->BKGTS",q,k,preferred_element_type=jnp.float32)
    if softcap is not None: logits=jnp.tanh(logits/softcap)*softcap
    if mask is not None: logits=jnp.where(mask[:,None,None],logits,K_MASK)
    weights=jax.nn.softmax(logits,axis=-1)
    out=jnp.einsum("BKGTS,BKSH->BKGTH",weights.astype(v.dtype),v)
    return out.transpose(0,3,1,2,4).reshape(B,T,N,H), weights.reshape(B,N,T,-1)
if 'perg' in variant: GL.stacked_matmul=sm_perg
if 'pergbig' in variant: GL.stacked_matmul=sm_perg_big
if 'attend' in variant: GL.attend=attend2; VM.attend=attend2
from common import config_for, random_inputs
from paligemma.model import PaliGemma
from paligemma.gemma.cache import KVCache, prefill
config=config_for('paligemma-bench-small')
model=PaliGemma(config, rngs=nnx.Rngs(0))
B=8
images,tokens=random_inputs(config,B,16)
P,L=config.num_image_tokens,tokens.shape[1]
graphdef,state=nnx.split(model)
vit=jax.jit(lambda s,im:nnx.merge(graphdef,s).embed_image(im))
def llm_prefill(s,x,positions,mask):
    cache=KVCache.create(config.llm,B,P+L+31)
    return prefill(nnx.merge(graphdef,s).llm,x,positions,mask,jnp.full((B,),P+L-1),cache)[0]
llm=jax.jit(llm_prefill)
embed=jax.jit(lambda s,im,t:nnx.merge(graphdef,s).embed(im,t,jnp.ones(t.shape,bool),jnp.zeros(t.shape,jnp.int32)))
x,mask,positions=embed(state,images,tokens)
def med(f,n=7):
    f(); ts=[]
    for _ in range(n): t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return 1e3*statistics.median(ts)
out=llm(state,x,positions,mask)

print(variant, 'vit', round(med(lambda:vit(state,images).block_until_ready())), 'llm', round(med(lambda:llm(state,x,positions,mask).block_until_ready())))
