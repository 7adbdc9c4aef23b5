"Build random-weight transformers PaliGemma models and inputs shared by the parity tests."
import numpy as np
import torch
from transformers import PaliGemmaConfig as HFPaliGemmaConfig, PaliGemmaForConditionalGeneration


def hf_tiny_config(*, gemma2: bool = False, vocab: int = 211, image_size: int = 42):
    "Odd, distinct sizes so a transposed or misshapen weight cannot hide: ViT 40x2, Gemma 64x3 with MQA/GQA."
    text = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=1, head_dim=24, vocab_size=vocab, model_type="gemma")
    if gemma2:
        text.update(model_type="gemma2", num_key_value_heads=2, query_pre_attn_scalar=24,
                    attn_logit_softcapping=5.0, final_logit_softcapping=7.0, sliding_window=4096)
    return HFPaliGemmaConfig(
        vision_config=dict(hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
                           image_size=image_size, patch_size=14, projection_dim=64, vision_use_head=False),
        text_config=text, image_token_id=vocab - 1, projection_dim=64)


def hf_random_model(config, seed: int = 0):
    "A transformers PaliGemma with every parameter random (norm gains and biases included), float32, eval mode, eager attention."
    torch.manual_seed(seed)
    model = PaliGemmaForConditionalGeneration(config)
    model.set_attn_implementation("eager")  # plain softmax attention, which can also return its weights
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p.shape[-1] if p.ndim >= 2 else 1
            if "embed_tokens" in name: std = 0.5
            elif p.ndim >= 2: std = 1.0 / np.sqrt(fan_in if p.ndim == 2 else np.prod(p.shape[1:]))
            else: std = 0.2
            p.copy_(torch.randn_like(p) * std)
    return model.eval().float()


def hf_state_numpy(model) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def batch_with_padding(config, lengths=(7, 4, 9), prefix_lengths=(3, 2, 5), seed=0):
    "Three examples of different lengths, right-padded: tokens, input_mask, mask_ar (prefix 0, suffix 1), images."
    rng = np.random.default_rng(seed)
    B, T = len(lengths), max(lengths)
    V = config.text_config.vocab_size - 1  # keep the image token out of the text
    tokens = np.zeros((B, T), np.int32)
    input_mask = np.zeros((B, T), bool)
    mask_ar = np.zeros((B, T), np.int32)
    for b, (n, p) in enumerate(zip(lengths, prefix_lengths)):
        tokens[b, :n] = rng.integers(3, V, n)
        tokens[b, 0] = 2
        input_mask[b, :n] = True
        mask_ar[b, p:n] = 1
    S = config.vision_config.image_size
    images = rng.uniform(-1, 1, (B, S, S, 3)).astype(np.float32)
    return images, tokens, input_mask, mask_ar


def hf_inputs(model, images, tokens, input_mask, mask_ar) -> tuple[int, dict]:
    "(P, transformers' keyword inputs for our batch): image placeholders first, token_type_ids 1 on the suffix."
    cfg = model.config
    P = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    B = tokens.shape[0]
    ids = np.concatenate([np.full((B, P), cfg.image_token_id), tokens], axis=1)
    attn = np.concatenate([np.ones((B, P), bool), input_mask], axis=1)
    tt = np.concatenate([np.zeros((B, P), np.int32), mask_ar], axis=1)
    return P, dict(input_ids=torch.tensor(ids, dtype=torch.long), pixel_values=torch.tensor(images.transpose(0, 3, 1, 2)),
                   attention_mask=torch.tensor(attn, dtype=torch.long), token_type_ids=torch.tensor(tt, dtype=torch.long),
                   use_cache=False)


def hf_logits(model, images, tokens, input_mask, mask_ar):
    "transformers' text logits for our inputs."
    P, inputs = hf_inputs(model, images, tokens, input_mask, mask_ar)
    with torch.no_grad():
        out = model(**inputs)
    return out.logits[:, P:].numpy()


def to_hub_layout(state: dict) -> dict:
    "transformers 5.x key names -> the 4.x names of the official hub files (with an explicit lm_head)."
    old = {}
    for k, v in state.items():
        k = k.removeprefix("model.")
        k = k.replace("vision_tower.", "vision_tower.vision_model.").replace("language_model.", "language_model.model.")
        old["language_model.lm_head.weight" if k == "lm_head.weight" else k] = np.ascontiguousarray(v)
    return old
