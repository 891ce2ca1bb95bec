"""all-mpnet-base-v2 offline: reassembly, checksum refusal, real-weight similarities (C9)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from w2sg_utils.experiments import mpnet
from w2sg_utils.experiments.embeddings import Encoder, resolve_model_path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _parts_installed() -> bool:
    try:
        mpnet.part_files()
    except FileNotFoundError:
        return False
    return True


needs_parts = pytest.mark.skipif(not _parts_installed(),
                                 reason="all-mpnet-base-v2 part packages not installed")


def _split_zip(tmp_path: Path, payload: bytes, pieces: int = 3) -> list[Path]:
    """A zip of a folder holding ``model.safetensors = payload``, cut into pieces."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("all-mpnet-base-v2/config.json", "{}")
        z.writestr("all-mpnet-base-v2/model.safetensors", payload)
    data = buf.getvalue()
    cuts = np.linspace(0, len(data), pieces + 1).astype(int)
    files = []
    for k in range(pieces):
        f = tmp_path / f"m.zip.{k + 1:03d}"
        f.write_bytes(data[cuts[k]: cuts[k + 1]])
        files.append(f)
    return files


def test_requirements_file_lists_the_five_parts_in_order():
    lines = [x.split("==")[0] for x in (ROOT / "requirements-mpnet.txt").read_text().split("\n")
             if x and not x.startswith("#")]
    assert lines == [p.replace("_", "-") for p in mpnet.MPNET_PARTS]
    assert "requirements-mpnet.txt" in (ROOT / "Makefile").read_text()


def test_extraction_reassembles_in_order_and_verifies(tmp_path):
    import hashlib

    payload = os.urandom(5000)
    files = _split_zip(tmp_path, payload)
    sha = hashlib.sha256(payload).hexdigest()
    dest = mpnet.extract_parts(files, tmp_path / "model", sha, len(payload))
    assert (dest / "model.safetensors").read_bytes() == payload
    assert (dest / "config.json").is_file()
    # pieces in the wrong order do not make a valid zip: nothing is left behind
    with pytest.raises((zipfile.BadZipFile, mpnet.ModelChecksumError)):
        mpnet.extract_parts(files[::-1], tmp_path / "other", sha, len(payload))
    assert not (tmp_path / "other").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".extract")] == []


def test_a_corrupted_extraction_is_refused_and_never_left_in_place(tmp_path):
    import hashlib

    payload = os.urandom(5000)
    sha = hashlib.sha256(payload).hexdigest()
    bad = bytearray(payload)
    bad[1234] ^= 1  # one flipped bit, same size
    files = _split_zip(tmp_path, bytes(bad))
    with pytest.raises(mpnet.ModelChecksumError, match="refusing .*SHA-256"):
        mpnet.extract_parts(files, tmp_path / "model", sha, len(payload))
    assert not (tmp_path / "model").exists()


def test_a_corrupted_cached_model_is_refused(tmp_path):
    folder = tmp_path / "models" / f"all-mpnet-base-v2-{mpnet.MPNET_REVISION[:12]}"
    folder.mkdir(parents=True)
    w = folder / "model.safetensors"
    with open(w, "wb") as f:  # right size, wrong bytes (a sparse file: cheap)
        f.truncate(mpnet.MPNET_SIZE)
    with pytest.raises(mpnet.ModelChecksumError, match="refusing"):
        mpnet.mpnet_model_path(root=tmp_path)
    w.write_bytes(b"short")
    with pytest.raises(mpnet.ModelChecksumError, match="found 5 bytes"):
        mpnet.mpnet_model_path(root=tmp_path)
    assert w.read_bytes() == b"short"  # refused, not silently replaced


@needs_parts
def test_hub_name_resolves_to_the_verified_folder():
    path = Path(resolve_model_path("sentence-transformers/all-mpnet-base-v2"))
    assert path == Path(resolve_model_path("all-mpnet-base-v2"))
    assert mpnet.verify_weights(path) == path  # size and SHA-256 of the upstream file


@needs_parts
def test_real_weights_order_sentence_similarities():
    """Paraphrases are closer than unrelated sentences, with a clear margin."""
    enc = Encoder("sentence-transformers/all-mpnet-base-v2", max_length=128)
    e = enc.encode([
        "How do I bake a loaf of bread at home?",
        "What is a simple recipe for homemade bread?",
        "The stock market fell sharply on Tuesday.",
        "Share prices dropped steeply this week.",
        "My cat likes to sleep in the sun.",
    ], progress=False)
    assert e.shape == (5, 768)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    s = e @ e.T
    assert s[0, 1] > max(s[0, 2], s[0, 3], s[0, 4]) + 0.2
    assert s[2, 3] > max(s[2, 0], s[2, 1], s[2, 4]) + 0.2
    assert min(s[0, 1], s[2, 3]) > 0.5 > max(s[0, 4], s[2, 4], s[1, 3])
