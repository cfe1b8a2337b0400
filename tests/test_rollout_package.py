"""`firebreak.rollout` names the learner actor as DESIGN.md does, without loading torch into
processes that only run envs (runners with a non-torch policy, RayVectorEnv) or hold the
learner's restore point."""

import subprocess
import sys
from pathlib import Path


def test_the_learner_actor_is_rollout_learner_and_torch_loads_only_when_it_is_used():
    code = (
        "import sys, firebreak.rollout as rollout\n"
        "assert 'torch' not in sys.modules, 'import firebreak.rollout loaded torch'\n"
        "from firebreak.rollout import RestorePoint, create_restore_point\n"
        "assert 'torch' not in sys.modules, 'the RestorePoint actor\\'s module loaded torch'\n"
        "from firebreak.rollout import Learner, create_learner\n"
        "import firebreak.rollout.learner as actor\n"
        "assert Learner is actor.Learner and create_learner is actor.create_learner\n"
        "assert 'Learner' in rollout.__all__ and 'torch' in sys.modules\n"
        "try:\n"
        "    rollout.Lerner\n"
        "except AttributeError as err:\n"
        "    assert 'Lerner' in str(err)\n"
        "else:\n"
        "    raise AssertionError('a misspelt name resolved')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
