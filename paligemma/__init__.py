__version__ = "0.1.0"

# The public API. Modules are exported from the notebooks in nbs/; this file only gathers their names.
from paligemma.gemma.transformer import GemmaConfig
from paligemma.vit.model import ViTConfig
from paligemma.model import PaliGemma, PaliGemmaConfig, make_attn_mask, param_count
from paligemma.checkpoints import CheckpointError, load_checkpoint
from paligemma.gemma.cache import KVCache
from paligemma.gemma.sow import SowConfig, records, set_sow
from paligemma.sampler import Sampler
from paligemma.tokenizer import Tokenizer, tokenize
from paligemma.processor import Processor
from paligemma.saving import save_checkpoint
from paligemma.segmentation import VQVAEDecoder, parse_segmentations
from paligemma.detection import boxes_to_text, draw_detections, parse_detections
from paligemma.finetune import (add_lora, cast_params, cross_entropy, loss_fn, make_optimizer, merge_lora, train_step,
                                trainable_filter)
from paligemma.pretrained import load_tiny
from paligemma.sharding import create_sharded, make_mesh, shard_batch, shard_model
