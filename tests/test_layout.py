"""The package's layering, read from its source with `ast`, and the reference configs the tests build models from."""
import pytest

from paligemma.testing import REFERENCE_CHECKPOINTS, reference_config, reference_dir


@pytest.mark.parametrize("name", sorted(REFERENCE_CHECKPOINTS))
def test_reference_config_matches_checkpoint_shapes(name):
    "`reference_config` (read from config.json) is the config `config_from_shapes` infers from the weights."
    from paligemma.checkpoints import NpzCheckpoint, config_from_shapes
    ckpt = NpzCheckpoint(reference_dir() / "bigvision" / REFERENCE_CHECKPOINTS[name] / "params.npz")
    inferred, ours = config_from_shapes(ckpt.shapes), reference_config(name)
    # Shapes say everything but the soft caps: config_from_shapes takes Gemma 2's (50, 30) for a Gemma 2 layout,
    # the tiny checkpoint was written with 5.0 and 5.0 (its config.json; the logits tests prove those values).
    caps = dict(attn_logits_softcap=ours.llm.attn_logits_softcap, final_logits_softcap=ours.llm.final_logits_softcap)
    assert inferred.replace(llm=inferred.llm.replace(**caps)) == ours
    assert (ours.llm.attn_logits_softcap is None) == (not ours.llm.post_norms)  # Gemma 1 has none, Gemma 2 both


def test_reference_config_rejects_unknown_name():
    with pytest.raises(ValueError, match="paligemma-tiny"): reference_config("paligemma-7b")
