"""The fire package is a pure core: importing it pulls in neither Ray nor torch."""

import subprocess
import sys


def test_fire_imports_no_ray_no_torch():
    code = ("import sys, firebreak.fire; "
            "bad = [m for m in ('ray', 'torch') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
