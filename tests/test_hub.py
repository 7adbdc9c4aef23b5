"Official weights from a hub, offline: `hf://` through a Hugging Face cache laid out as huggingface_hub lays it, `kaggle://` through kagglehub's cache, and the one-line errors."
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from paligemma import PaliGemma, load_checkpoint, save_checkpoint
from paligemma.hub import HubError, hf_file, kaggle_npz, pick_npz, resolve_checkpoint, resolve_tokenizer
from paligemma.testing import reference_config
from paligemma.testing import reference_dir
from paligemma.tokenizer import Tokenizer

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # a snapshot is named by its commit hash


def flat(model) -> dict:
    return {"/".join(map(str, k)): np.asarray(v[...]) for k, v in nnx.to_flat_state(nnx.state(model))}


def assert_same_params(a, b):
    fa, fb = flat(a), flat(b)
    assert sorted(fa) == sorted(fb) and len(fa) > 20
    for k in fa:
        assert fa[k].dtype == fb[k].dtype, k
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory, spm_model):
    "A random tiny PaliGemma 2 saved as a Hugging Face folder, and a hub cache holding it as test-org/tiny-pg2."
    root = tmp_path_factory.mktemp("hub")
    model = PaliGemma(reference_config("paligemma2-tiny"), rngs=nnx.Rngs(3))
    folder = save_checkpoint(model, root / "folder", format="safetensors")
    (folder / "tokenizer.model").write_bytes(spm_model.read_bytes())
    repo = root / "cache" / "models--test-org--tiny-pg2"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for f in folder.iterdir():  # huggingface_hub links snapshot files to blobs; plain copies read the same
        (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return folder, root / "cache", root / "home"


def run_offline(code: str, cache: Path, home: Path) -> dict:
    "Run `code` in a fresh Python whose huggingface_hub reads the test cache with HF_HUB_OFFLINE=1; its printed JSON."
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "JAX_PLATFORMS": "cpu"}
    env.pop("HF_TOKEN", None)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_hf_uri_loads_from_the_cache_offline(hf_cache):
    folder, cache, home = hf_cache
    got = run_offline(f"""
        import json, numpy as np
        from flax import nnx
        from paligemma import load_checkpoint, resolve_tokenizer, Tokenizer
        from paligemma.hub import HubError
        def flat(m): return {{"/".join(map(str, k)): np.asarray(v[...]) for k, v in nnx.to_flat_state(nnx.state(m))}}
        local = flat(load_checkpoint({str(folder)!r}))
        out = {{"keys": len(local)}}
        for uri in ["hf://test-org/tiny-pg2", "hf://test-org/tiny-pg2@{COMMIT}"]:
            hub = flat(load_checkpoint(uri))
            out[uri] = sorted(hub) == sorted(local) and all(
                hub[k].dtype == local[k].dtype and np.array_equal(hub[k], local[k]) for k in local)
        tok = Tokenizer(resolve_tokenizer("hf://test-org/tiny-pg2"))
        out["tokenizer"] = [tok.vocab_size, tok.encode("detect cat")]
        try: load_checkpoint("hf://test-org/not-cached")
        except HubError as e: out["not_cached"] = str(e)
        print(json.dumps(out))
    """, cache, home)
    assert got["keys"] > 20
    assert got["hf://test-org/tiny-pg2"] is True  # every parameter equal to loading the folder itself
    assert got[f"hf://test-org/tiny-pg2@{COMMIT}"] is True
    local_tok = Tokenizer(folder / "tokenizer.model")
    assert got["tokenizer"] == [local_tok.vocab_size, local_tok.encode("detect cat")]
    msg = got["not_cached"]
    assert "hf://test-org/not-cached is not in the Hugging Face cache" in msg and "HF_HUB_OFFLINE" in msg
    assert "\n" not in msg


def hide(monkeypatch, module: str):
    "Make `import module` fail, as when the optional extra is not installed."
    monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize("uri, module, extra", [
    ("hf://google/paligemma2-3b-pt-224", "huggingface_hub", "hf"),
    ("kaggle://google/paligemma-2/jax/paligemma2-3b-pt-224", "kagglehub", "kaggle"),
])
def test_missing_extra_says_what_to_install(monkeypatch, uri, module, extra):
    hide(monkeypatch, module)
    with pytest.raises(HubError) as e: load_checkpoint(uri)
    assert str(e.value) == f"{uri} needs the {module} package: pip install 'paligemma[{extra}]'"
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_hf_tokenizer_missing_extra(monkeypatch):
    hide(monkeypatch, "huggingface_hub")
    with pytest.raises(HubError, match=r"pip install 'paligemma\[hf\]'"): resolve_tokenizer("hf://google/paligemma2-3b-pt-224")


def test_bad_uris():
    with pytest.raises(HubError, match="expected hf://ORG/NAME"): load_checkpoint("hf://paligemma2-3b-pt-224")
    with pytest.raises(HubError, match="expected kaggle://OWNER/MODEL/FRAMEWORK/VARIATION"):
        load_checkpoint("kaggle://google/paligemma-2/paligemma2-3b-pt-224")
    with pytest.raises(HubError, match="Kaggle"): resolve_tokenizer("kaggle://google/paligemma-2/jax/paligemma2-3b-pt-224")
    with pytest.raises(HubError, match="not a valid repository id"): load_checkpoint("hf://google/pali gemma")
    with pytest.raises(FileNotFoundError): load_checkpoint("hf:/google/x")  # a local path, as before


def _http_error(cls, status: int):
    import httpx
    return cls("refused", response=httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co/api")))


@pytest.mark.parametrize("make, expected", [
    (lambda e: _http_error(e.GatedRepoError, 403), "is gated: accept the licence on https://huggingface.co/google/pg"),
    (lambda e: _http_error(e.RepositoryNotFoundError, 404), "no repository google/pg on the Hub, or it is private"),
    (lambda e: _http_error(e.HfHubHTTPError, 401), "the Hub answered 401: log in with `huggingface-cli login` or set HF_TOKEN"),
    (lambda e: e.LocalEntryNotFoundError("not cached"), "is not in the Hugging Face cache"),
])
def test_hf_errors_become_one_line(monkeypatch, make, expected):
    import huggingface_hub
    from huggingface_hub import errors
    def refuse(*a, **k): raise make(errors)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    for call in (lambda: load_checkpoint("hf://google/pg"), lambda: hf_file("hf://google/pg", "tokenizer.model")):
        with pytest.raises(HubError) as e: call()
        assert expected in str(e.value) and "\n" not in str(e.value)
    if "gated" in expected: assert "HF_TOKEN" in str(e.value)


def test_hf_repo_without_safetensors(monkeypatch, tmp_path):
    "A big_vision repo on the Hub (google/*-jax) has no safetensors: the error says to name its .npz."
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(tmp_path))
    with pytest.raises(HubError, match=r"name its \.npz: hf://google/pg-jax/FILE\.npz"):
        load_checkpoint("hf://google/pg-jax")


# Kaggle: kagglehub reads its cache folder from KAGGLEHUB_CACHE at each call; a handle with its version is found there
# without asking Kaggle (models/OWNER/MODEL/FRAMEWORK/VARIATION/VERSION/, marked by VERSION.complete).

def kaggle_cache(root: Path, handle: str, files: dict[str, Path]) -> None:
    *variation, version = handle.split("/")
    folder = root / "models" / Path(*variation)
    (folder / version).mkdir(parents=True)
    for name, src in files.items(): (folder / version / name).write_bytes(src.read_bytes())
    (folder / f"{version}.complete").touch()


def test_kaggle_uri_loads_from_kagglehub_cache(monkeypatch, tmp_path):
    ref = reference_dir() / "bigvision" / "pg2_tiny" / "params.npz"
    kaggle_cache(tmp_path, "google/paligemma-2/jax/paligemma2-tiny/1", {"paligemma2-tiny.b16.npz": ref})
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    model = load_checkpoint("kaggle://google/paligemma-2/jax/paligemma2-tiny/1")
    assert model.llm.embedder.input_embedding.dtype == jnp.bfloat16  # the file's dtype
    assert_same_params(model, load_checkpoint(ref))
    with np.load(ref) as z:  # and the file itself, read by numpy (bfloat16 is stored as 2-byte void)
        np.testing.assert_array_equal(np.asarray(model.llm.final_norm.scale).view(np.uint16),
                                      z["params/llm/final_norm/scale"].view(np.uint16))


def test_kaggle_picks_the_copy_in_the_requested_dtype(monkeypatch, tmp_path):
    "PaliGemma 1 variations hold float32, bfloat16 and float16 copies; the download is mocked to return such a folder."
    import kagglehub
    ref = reference_dir() / "bigvision" / "pg1_tiny" / "params.npz"
    for name in ("pg.npz", "pg.bf16.npz", "pg.f16.npz"): (tmp_path / name).write_bytes(ref.read_bytes())
    calls = []
    monkeypatch.setattr(kagglehub, "model_download", lambda handle, path=None: calls.append((handle, path)) or (
        str(tmp_path / path) if path else str(tmp_path)))
    uri = "kaggle://google/paligemma/jax/paligemma-3b-pt-224"
    assert resolve_checkpoint(uri) == tmp_path / "pg.npz"
    assert resolve_checkpoint(uri, dtype=jnp.bfloat16) == tmp_path / "pg.bf16.npz"
    assert resolve_checkpoint(uri + "/pg.f16.npz") == tmp_path / "pg.f16.npz"
    assert calls[-1] == ("google/paligemma/jax/paligemma-3b-pt-224", "pg.f16.npz")
    model = load_checkpoint(uri, dtype=jnp.float16)
    assert model.llm.final_norm.scale.dtype == jnp.float16
    with pytest.raises(HubError, match="holds 3 checkpoints"): kaggle_npz(uri, dtype=jnp.int8)
    assert pick_npz(tmp_path, jnp.float32) == tmp_path / "pg.npz"


@pytest.mark.parametrize("status, expected", [
    (403, "access denied: accept the licence on https://www.kaggle.com/models/google/paligemma-2"),
    (401, "set KAGGLE_USERNAME and KAGGLE_KEY"),
    (404, "no such model on Kaggle"),
    (None, "cannot reach Kaggle and it is not in kagglehub's cache"),
])
def test_kaggle_errors_become_one_line(monkeypatch, status, expected):
    import kagglehub, requests
    from kagglehub.exceptions import KaggleApiHTTPError
    def refuse(*a, **k):
        if status is None: raise requests.ConnectionError("Failed to resolve 'api.kaggle.com'")
        response = requests.Response(); response.status_code = status
        raise KaggleApiHTTPError("refused", response=response)
    monkeypatch.setattr(kagglehub, "model_download", refuse)
    with pytest.raises(HubError) as e: load_checkpoint("kaggle://google/paligemma-2/jax/paligemma2-3b-pt-224")
    assert expected in str(e.value) and "\n" not in str(e.value)

