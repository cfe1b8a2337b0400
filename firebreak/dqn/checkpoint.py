"""Training checkpoints: one ``.pt`` file that rebuilds the policy without any other input.

A checkpoint holds the learner state (online and target networks, optimizer, counters), the
network description (kind, kwargs, observation shape and layer names), the resolved config
and the run's counters. It is written atomically (temp file + rename) and read with
``torch.load(..., weights_only=True)``: tensors and plain containers only, never code.

The learner state may name a saved replay (`DQN.save_replay`): a file in the checkpoint's
folder is stored by its name and read back relative to the checkpoint, so a run folder can move.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from .networks import DPV_LAYER, build_q_network

FORMAT = "firebreak-dqn"
VERSION = 1


class CheckpointError(ValueError):
    """A missing, unreadable or foreign checkpoint; the message names the file and the fix."""


def save_checkpoint(path: str | Path, *, learner_state: dict, model: dict[str, Any], config: dict,
                    counters: dict[str, float]) -> Path:
    """Write a checkpoint atomically. `model`: kind, kwargs, obs_shape, obs_layers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replay = learner_state.get("replay")
    if replay is not None and Path(replay["file"]).parent == path.parent.resolve():
        learner_state = {**learner_state, "replay": {**replay, "file": Path(replay["file"]).name}}
    payload = {"format": FORMAT, "version": VERSION, "model": model, "config": config, "counters": counters,
               "learner": learner_state}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".pt.tmp", delete=False) as tmp:
        torch.save(payload, tmp)
    os.replace(tmp.name, path)
    return path


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """Read and check a checkpoint written by `save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint. Runs write runs/<name>/checkpoints/latest.pt and best.pt.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable firebreak checkpoint ({str(err).splitlines()[0]}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a firebreak DQN checkpoint (no format '{FORMAT}'); "
                              "give a file from runs/<name>/checkpoints/.")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')}, this firebreak reads {VERSION}.")
    missing = [key for key in ("model", "config", "counters", "learner") if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}; it was not written by firebreak.")
    _fill_prior_inputs(payload, path)
    replay = payload["learner"].get("replay")
    if replay is not None:
        replay["file"] = str((path.parent / replay["file"]).resolve())  # an absolute name stays as it is
    return payload


def _fill_prior_inputs(payload: dict, path: Path) -> None:
    """Checkpoints written before the DPV prior took its inputs as kwargs name neither: the
    prior read the ``downstream_protection`` layer in percent of the tile (scale 100)."""
    model = payload["model"]
    kwargs_sets = [model.get("kwargs")]
    learner = payload["config"].get("learner") if isinstance(payload["config"], dict) else None
    if isinstance(learner, dict):
        kwargs_sets.append(learner.get("network_kwargs"))
    layers = list(model.get("obs_layers") or [])
    for kwargs in kwargs_sets:
        if not (isinstance(kwargs, dict) and kwargs.get("dpv_prior")):
            continue
        if "prior_channel" not in kwargs:
            if DPV_LAYER not in layers:
                raise CheckpointError(f"{path}: its network has a DPV prior but its observation layers {layers} "
                                      f"have no {DPV_LAYER!r}; the checkpoint is damaged or foreign.")
            kwargs["prior_channel"] = layers.index(DPV_LAYER)
        kwargs.setdefault("prior_scale", 100.0)


def build_policy_network(payload: dict) -> torch.nn.Module:
    """The online Q-network of a loaded checkpoint, in eval mode on the CPU."""
    model = payload["model"]
    network = build_q_network(model["kind"], int(model["obs_shape"][0]), **model["kwargs"])
    network.load_state_dict(payload["learner"]["dqn"]["q_network"])
    return network.eval()
