"""cluster.yaml is a valid `ray up` config by Ray's own schema and keeps its promises."""

from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import fillout_defaults, validate_config

CLUSTER_YAML = Path(__file__).parents[1] / "cluster.yaml"


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_validates_against_rays_schema(config):
    validate_config(fillout_defaults(config))  # raises jsonschema.ValidationError when invalid


def test_a_broken_config_is_rejected(config):
    import jsonschema

    broken = fillout_defaults(config)
    broken["available_node_types"]["head"]["min_workers"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        validate_config(broken)


def test_learner_node_and_security(config):
    types = config["available_node_types"]
    learners = [name for name, t in types.items() if t.get("resources", {}).get("learner")]
    assert learners == ["gpu_learner"] and types["gpu_learner"]["min_workers"] == 1
    assert "env_runner" in types["cpu_runners"]["resources"]
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start, "the dashboard must not listen on public interfaces"
    assert all("RAY_AUTH_MODE=token" in cmd for cmd in config["head_start_ray_commands"] + config["worker_start_ray_commands"]
               if "ray start" in cmd)
    assert "~/.ray/auth_token" in config["file_mounts"]
    assert "security_group" not in str(config["provider"]), "no ingress rules that open ports"
