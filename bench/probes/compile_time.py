import sys, time; sys.path.insert(0, "bench")
import decode_bytes as db
from paligemma.gemma.transformer import GemmaConfig
depth = int(sys.argv[1]) if len(sys.argv) > 1 else 26
for stacked, impls in ((True, ("today", "proto", "scanned")), (False, ("today", "proto"))):
    cfg = GemmaConfig.gemma2_2b(depth=depth, vocab_size=256, stack_layers=stacked, width=256, mlp_dim=512, head_dim=32)
    for impl in impls:
        t = time.perf_counter(); db.compile_extend(cfg, 8, 512, impl); print(stacked, impl, f"{time.perf_counter()-t:.1f} s", flush=True)
