"""viz.py end to end on a tiny checkpoint trained here (smoke config, no Ray actors), and its errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

import viz
from firebreak.config import load_config
from firebreak.train import Evaluator, train
from firebreak.viz import eval_landscape, load_policy, plot_training_summary

ROOT = Path(__file__).parents[1]
PNGS = ("fuelbreaks_overlay.png", "burn_probability.png", "qvalue_evolution.png", "training_summary.png",
        "comparison.png")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(ROOT / "ray_configs" / "smoke.yaml",
                      [f"run.out_dir={out}", "rollout.runners=0", "run.total_env_steps=160",
                       "run.eval_every_env_steps=80", "run.checkpoint_every_env_steps=80"])
    summary = train(cfg, progress=False)
    return Path(summary["run_dir"]) / "checkpoints" / "best.pt"


@pytest.mark.timeout(300)
def test_renders_every_output(ckpt, tmp_path, capsys):
    out = tmp_path / "viz"
    assert viz.main(["--ckpt", str(ckpt), "--scenarios", "8", "--gif", "--compare", "--background", "fuel",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dqn" in printed and "domirank" in printed and "burned fraction" in printed
    for name in PNGS:
        path = out / name
        assert path.stat().st_size > 30_000, name  # a real figure, not an empty canvas
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 300, name
    gif = out / "episode.gif"
    assert gif.stat().st_size < 2_000_000
    with Image.open(gif) as image:
        frames = sum(1 for _ in ImageSequence.Iterator(image))
    # smoke budget 0.03 of 24 x 24 cells = 17 breaks (one frame each, at most 24), then 10 fire frames
    assert frames == 17 + 10


def test_default_landscape_is_the_evaluators_tile(ckpt):
    policy = load_policy(ckpt)
    evaluator = Evaluator(policy.config)
    landscape, label = eval_landscape(policy.config, 0)
    assert "synthetic:24 tile 0" in label
    assert np.array_equal(landscape.fuel_model, evaluator.landscapes[0].fuel_model)
    assert policy.obs_shape[1:] == landscape.shape == (24, 24)


def test_training_summary_without_events_says_no_data(tmp_path):
    path = plot_training_summary(tmp_path / "no_tb", tmp_path / "summary.png")
    assert path.stat().st_size > 10_000


def _fails(argv, capsys, *expected):
    assert viz.main(argv) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, err
    return err


def test_missing_and_foreign_checkpoints(tmp_path, capsys):
    out = tmp_path / "out"
    _fails(["--ckpt", str(tmp_path / "nope.pt"), "--out", str(out)], capsys, "nope.pt", "no such checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    _fails(["--ckpt", str(foreign), "--out", str(out)], capsys, "foreign.pt", "not a firebreak DQN checkpoint")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    _fails(["--ckpt", str(text), "--out", str(out)], capsys, "notes.pt", "not a readable firebreak checkpoint")
    assert not out.exists()  # no substitute images


def test_bad_tile_landscape_and_layer(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    _fails(["--ckpt", str(ckpt), "--tile", "-1", "--out", str(out)], capsys, "--tile -1")
    _fails(["--ckpt", str(ckpt), "--landscape", "sample:64:holdout", "--tile", "99", "--out", str(out)], capsys,
           "--tile 99", "sample:64:holdout has 8 landscape(s)", "--tile 0 to 7")
    _fails(["--ckpt", str(ckpt), "--landscape", "sample:64:holdout", "--out", str(out)], capsys,
           "64x64", "trained on 24x24", "--landscape")
    _fails(["--ckpt", str(ckpt), "--landscape", str(tmp_path / "missing_dir"), "--out", str(out)], capsys,
           "missing_dir", "not a landscape source")
    with pytest.raises(SystemExit) as exit_info:
        viz.main(["--ckpt", str(ckpt), "--background", "soil", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "--background: invalid choice: 'soil'" in capsys.readouterr().err
    assert not out.exists()


def test_cli_exit_code(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "viz.py"), "--ckpt", str(tmp_path / "none.pt")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "none.pt: no such checkpoint" in result.stderr and "Traceback" not in result.stderr
