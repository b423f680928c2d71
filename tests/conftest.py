from __future__ import annotations

import pytest

import swarmlog


@pytest.fixture
def store_path(tmp_path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def mem(store_path):
    m = swarmlog.open_local(store_path)
    yield m
    m.close()


@pytest.fixture
def ns(mem):
    return mem.namespace("acme/support")
