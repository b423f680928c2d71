from __future__ import annotations

import pytest

import swarmlog
from tests.helpers import Store, ensure_ray_session

# The backends the contract suite runs against; the Ray backend joins as one more name here.
BACKENDS = ["local", "ray"]


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


# -- Ray ---------------------------------------------------------------------------------------
# One local Ray instance for the whole session (starting one takes seconds). Tests that need
# their own multi-node cluster shut it down and the next Ray test starts it again.


@pytest.fixture
def ray_session():
    return ensure_ray_session()


@pytest.fixture(scope="session", autouse=True)
def _shutdown_ray_at_exit():
    yield
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


@pytest.fixture
def ray_mem(ray_session, store_path):
    """A store served by Ray actors; its actors are stopped after the test."""
    m = swarmlog.connect(store_path)
    yield m
    m.shutdown()
