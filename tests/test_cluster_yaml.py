"""cluster.yaml is a real Ray cluster launcher config: validated the way `ray up` validates it."""

from __future__ import annotations

import copy
import json
import os

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def config() -> dict:
    with open(os.path.join(ROOT, "cluster.yaml")) as f:
        return yaml.safe_load(f)


@pytest.fixture
def schema() -> dict:
    with open(os.path.join(os.path.dirname(ray.autoscaler.__file__), "ray-schema.json")) as f:
        return json.load(f)


def test_cluster_yaml_passes_rays_own_schema_and_cross_field_validation(config, schema):
    assert list(jsonschema.Draft7Validator(schema).iter_errors(config)) == []
    validate_config(prepare_config(copy.deepcopy(config)))


def test_cluster_yaml_installs_swarmlog_and_keeps_data_on_the_shared_mount(config):
    setup = " ".join(config["setup_commands"])
    assert "pip install -e ~/swarmlog" in setup
    assert config["file_mounts"]["~/swarmlog"] == "."
    init = " ".join(config["initialization_commands"])
    assert "mount -t nfs4" in init and "/mnt/swarmlog" in init
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("SWARMLOG_DATA=/mnt/swarmlog/data" in c for c in config[key])


def test_the_validation_used_here_rejects_a_broken_config(config, schema):
    broken = copy.deepcopy(config)
    broken["head_node_type"] = "no-such-node-type"
    with pytest.raises(ValueError):
        validate_config(prepare_config(broken))
    typo = dict(config, setup_comands=["x"])
    assert any("setup_comands" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(typo))
