"Shared pieces of the benchmarks: the same random weights for both implementations, timing, peak memory."
from __future__ import annotations
import statistics
import time
from pathlib import Path

import numpy as np


def _bench_small(gemma):
    "Full vocabulary and resolution, narrow and shallow towers: `gemma` is a `GemmaConfig` preset to shrink."
    from paligemma.gemma.transformer import GemmaConfig
    from paligemma.model import PaliGemmaConfig
    from paligemma.vit.model import ViTConfig
    heads = dict(gemma_2b=1, gemma2_2b=4)[gemma]
    return PaliGemmaConfig(ViTConfig(width=384, depth=6, mlp_dim=1536, num_heads=6),
                           getattr(GemmaConfig, gemma)(width=512, depth=6, mlp_dim=2048, num_heads=8,
                                                       num_kv_heads=heads, head_dim=64), 224)


BENCH_CONFIGS = {"paligemma-bench-small": "gemma_2b", "paligemma2-bench-small": "gemma2_2b"}


def config_for(name: str):
    "A benchmark config (`BENCH_CONFIGS`) or an official one (`PaliGemmaConfig.from_name`)."
    from paligemma.model import PaliGemmaConfig
    return _bench_small(BENCH_CONFIGS[name]) if name in BENCH_CONFIGS else PaliGemmaConfig.from_name(name)


def hf_model_for(config, seed: int = 0, dtype: str = "float32"):
    "A transformers PaliGemma with the shape of our `config`, random weights from `seed`, in `dtype`, eval mode."
    import torch
    from transformers import PaliGemmaConfig as HFConfig, PaliGemmaForConditionalGeneration
    from paligemma.formats.hf import config_to_hf
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # build in the target dtype: a full-size float32 copy is 11.7 GB
    try:
        model = PaliGemmaForConditionalGeneration(HFConfig(**config_to_hf(config)))
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():  # every parameter random, norms and biases included, at a sane scale
        for name, p in model.named_parameters():
            std = 0.5 if "embed_tokens" in name else (p.shape[-1] ** -0.5 if p.ndim >= 2 else 0.1)
            p.copy_(torch.randn_like(p) * std)
    return model.eval()


def random_inputs(config, batch: int, text_len: int, seed: int = 0):
    "Images in [-1, 1] at the model's resolution and BOS-led random text tokens."
    rng = np.random.default_rng(seed)
    S = config.image_size
    images = rng.uniform(-1, 1, (batch, S, S, 3)).astype(np.float32)
    tokens = rng.integers(3, 1000, (batch, text_len)).astype(np.int32)
    tokens[:, 0] = 2
    return images, tokens


def our_model_from(hf_model, config, **kw):
    "Our model with the transformers model's weights."
    from paligemma.formats.hf import model_from_hf
    state = {k: v.detach().float().numpy() for k, v in hf_model.state_dict().items()}
    return model_from_hf(state, config, **kw)


def median_time(fn, repeats: int = 5) -> float:
    "Median wall time of `fn()` in seconds (fn must block until its result is ready)."
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"): return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss():
    "Linux: make VmHWM (peak RSS) restart from the current RSS."
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"): return int(line.split()[1]) * 1024
    return 0


def copy_bandwidth(n_bytes: int = 1 << 30) -> float:
    "Measured memory bandwidth of a large copy in bytes/s (bytes read + written)."
    a = np.ones(n_bytes // 4, np.float32)
    b = np.empty_like(a)
    t = median_time(lambda: np.copyto(b, a), 5)
    return 2 * a.nbytes / t
