from __future__ import annotations

import pytest

import swarmlog
from tests.helpers import Store

# The backends the contract suite runs against; the Ray backend joins as one more name here.
BACKENDS = ["local"]


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


@pytest.fixture(params=BACKENDS)
def store(request, store_path):
    """An open store of one backend, with ``reopen`` and (where the backend allows) a test clock."""
    s = Store(request.param, store_path)
    yield s
    s.close()
