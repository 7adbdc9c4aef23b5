__version__ = "0.1.0"

# The public API. Modules are exported from the notebooks in nbs/; this file only says which module defines each
# public name, and imports that module the first time the name is used (PEP 562), so `import paligemma` and the
# `paligemma` command's --help do not pay for importing JAX and Flax.
import importlib as _importlib

_EXPORTS = {
    "paligemma.gemma.transformer": ["GemmaConfig"],
    "paligemma.vit.model": ["ViTConfig"],
    "paligemma.model": ["PaliGemma", "PaliGemmaConfig", "make_attn_mask", "param_count"],
    "paligemma.io": ["CheckpointError"],
    "paligemma.hub": ["HubError", "resolve_tokenizer"],
    "paligemma.checkpoints": ["load_checkpoint"],
    "paligemma.gemma.cache": ["KVCache"],
    "paligemma.sow": ["RecordingSampler", "SowConfig", "recorded_forward"],
    "paligemma.sampler": ["Greedy", "Sampler", "SamplerOutput", "Sampling", "Strategy"],
    "paligemma.tokenizer": ["Tokenizer", "tokenize", "train_sentencepiece"],
    "paligemma.processor": ["Processor"],
    "paligemma.saving": ["save_checkpoint"],
    "paligemma.tasks.segmentation": ["VQVAEDecoder", "parse_segmentations"],
    "paligemma.tasks.detection": ["boxes_to_text", "draw_detections", "parse_detections"],
    "paligemma.lora": ["LoRA", "LoRAEinsum", "add_lora", "merge_lora"],
    "paligemma.finetune": ["cast_params", "cross_entropy", "loss_fn", "make_optimizer", "train_step", "trainable_filter"],
    "paligemma.demo.tiny_model": ["load_tiny"],
    "paligemma.sharding": ["ShardedSampler", "create_sharded", "make_mesh", "shard_batch", "shard_model"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    "A public name, imported from its module on first use; or a submodule (`paligemma.demo.tiny_model`)."
    if name in _MODULE_OF:
        value = getattr(_importlib.import_module(_MODULE_OF[name]), name)
        globals()[name] = value  # later uses are plain attribute lookups
        return value
    try: return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}": raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]: return sorted(set(globals()) | set(__all__))
