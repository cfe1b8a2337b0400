"""The DQN core stands alone: no Ray, no fire simulation, no env (the learner's GPU machine has none)."""

import subprocess
import sys
from pathlib import Path


def test_importing_the_dqn_core_pulls_in_no_ray_and_no_env():
    # building the DPV-prior network too: it once imported firebreak.env for its layer index
    code = (
        "import sys, firebreak.dqn\n"
        "firebreak.dqn.build_q_network('residual', 18, channels=4, dilations=[1], dpv_prior=True, prior_channel=15)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ray', 'gymnasium')\n"
        "       or m.startswith(('firebreak.fire', 'firebreak.env', 'firebreak.rollout'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
