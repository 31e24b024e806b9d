"""Weights download through the real code path, from a real HTTP server on loopback."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest
import torch

from cowdemo.errors import CowdemoError
from cowdemo.models.weights import resolve_weights


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_lands_in_torch_cache_and_is_verified(http_root, tmp_path, monkeypatch):
    root, base = http_root
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    payload = tmp_path / "payload.pth"
    torch.save({"w": torch.arange(5.0)}, payload)
    data = payload.read_bytes()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    (root / f"model-{prefix}.pth").write_bytes(data)
    path = resolve_weights("m", f"{base}/model-{prefix}.pth", folder=tmp_path / "ckpt",
                           allow_download=True)
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / f"model-{prefix}.pth"
    assert path.read_bytes() == data
    # found locally the second time, even with downloads off
    assert resolve_weights("m", f"{base}/model-{prefix}.pth", folder=tmp_path / "ckpt",
                           allow_download=False) == path


def test_corrupted_download_is_rejected_and_not_kept(http_root, tmp_path, monkeypatch):
    root, base = http_root
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (root / "model-deadbeef.pth").write_bytes(b"not what the name promises")
    with pytest.raises(CowdemoError, match=r"Download of .* failed") as info:
        resolve_weights("m", f"{base}/model-deadbeef.pth", folder=tmp_path, allow_download=True)
    assert "put model-deadbeef.pth in" in str(info.value)
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / "model-deadbeef.pth").exists()


def test_unreachable_server_gives_the_offline_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(CowdemoError, match=r"get it from http://127\.0\.0\.1:9/x-12345678\.pth"):
        resolve_weights("m", "http://127.0.0.1:9/x-12345678.pth", folder=tmp_path,
                        allow_download=True)
