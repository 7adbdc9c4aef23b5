"Probe (issue 26, prefill at batch 8): see bench/RESULTS.md \"Prefill at batch 8 on a quiet host\"."
import sys, time, statistics
sys.path.insert(0,str(__import__('pathlib').Path(__file__).resolve().parents[1]))
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
from common import config_for, random_inputs
from paligemma.model import PaliGemma
config=config_for('paligemma-bench-small')
model=PaliGemma(config, rngs=nnx.Rngs(0))
images,_=random_inputs(config,8,16)
vit=model.img
def med(f,n=7):
    f(); ts=[]
    for _ in range(n): t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return 1e3*statistics.median(ts)
g,s=nnx.split(vit)
pat=jax.jit(lambda s,im:nnx.merge(g,s).patchify(im))
x=pat(s,images)
def patch_mm(s,im):
    v=nnx.merge(g,s); p=v.config.patch_size; B,S,_,C=im.shape; n=S//p
    t=im.reshape(B,n,p,n,p,C).transpose(0,1,3,2,4,5).reshape(B,n*n,p*p*C)
    return t@v.embedding.kernel[...].reshape(p*p*C,-1)+v.embedding.bias[...]+v.pos_embedding[...]
pm=jax.jit(patch_mm)
print('patch diff',float(jnp.abs(pm(s,images)-x).max()))
print('patchify conv',round(med(lambda:pat(s,images).block_until_ready()),1),'matmul',round(med(lambda:pm(s,images).block_until_ready()),1))
enc=jax.jit(lambda s,x:nnx.merge(g,s).encode(x))
print('encode all',round(med(lambda:enc(s,images).block_until_ready()),1))
layer0=jax.tree.map(lambda a:a[0], nnx.state(vit.layers))
bg,bs=nnx.split(vit.layers)
import paligemma.vit.model as VM
blk=VM.EncoderBlock(config.vit, rngs=nnx.Rngs(1)); gb,sb=nnx.split(blk)
one=jax.jit(lambda s,x:nnx.merge(gb,s)(x))
print('one block',round(med(lambda:one(sb,x).block_until_ready()),1))
at=jax.jit(lambda s,x:nnx.merge(gb,s).attn(x)); ml=jax.jit(lambda s,x:nnx.merge(gb,s).mlp(x))
print('attn',round(med(lambda:at(sb,x).block_until_ready()),1),'mlp',round(med(lambda:ml(sb,x).block_until_ready()),1))
a=blk.attn; ga,sa=nnx.split(a)
xn=jax.jit(lambda s,x:nnx.merge(gb,s).norm1(x))(sb,x)
def parts(s,x,which):
    m=nnx.merge(ga,s)
    if which=='q': return m.query(x)
    if which=='qkv': return m.query(x),m.key(x),m.value(x)
    if which=='qkvT': hf=lambda t:t.transpose(0,2,1,3); return m.query(x),hf(m.key(x)),hf(m.value(x))
    if which=='all': return m(x)
for w in ['q','qkv','qkvT','all']:
    f=jax.jit(lambda s,x,w=w:parts(s,x,w)); print(w, round(med(lambda:jax.block_until_ready(f(sa,xn))),1))
from paligemma.nn import attend
q=jnp.ones((8,256,6,64)); k=jnp.ones((8,6,256,64))
fa=jax.jit(lambda q,k,v:attend(q,k,v,None)); print('attend', round(med(lambda:jax.block_until_ready(fa(q,k,k))),1))
fo=jax.jit(lambda s,e:nnx.merge(ga,s).out(e)); print('out', round(med(lambda:fo(sa,q).block_until_ready()),1))
import torch; torch.set_num_threads(2)
tq=torch.randn(8,6,256,64)
tq4=torch.randn(8,256,6,64).transpose(1,2)
print('torch sdpa noncontig', round(med(lambda:torch.nn.functional.scaled_dot_product_attention(tq4,tq4,tq4)),1))
print('torch sdpa', round(med(lambda:torch.nn.functional.scaled_dot_product_attention(tq,tq,tq)),1))
tx=torch.randn(2048,384); tw=torch.randn(384,384)
print('torch lin 384', round(med(lambda:torch.nn.functional.linear(tx,tw)),1))
fl=jax.jit(lambda a,b:a@b); xr=x.reshape(-1,384); wr=jnp.ones((384,384)); print('jax lin 384', round(med(lambda:fl(xr,wr).block_until_ready()),1))
