"""Fixtures shared by several test modules."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def isolated_w2sg_cache(tmp_path_factory):
    """Point W2SG_CACHE at a fresh folder for one test module (offline hub), then restore it.

    Use it with ``pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")``.
    """
    old = os.environ.get("W2SG_CACHE")
    os.environ["W2SG_CACHE"] = str(tmp_path_factory.mktemp("w2sg_cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield
    if old is None:
        os.environ.pop("W2SG_CACHE", None)
    else:
        os.environ["W2SG_CACHE"] = old
