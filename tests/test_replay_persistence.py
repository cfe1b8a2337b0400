"""Replay persistence (learner.save_replay): round trip, learner state, resume, mismatch, atomic write."""

import errno
import logging
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from firebreak.config import load_config
from firebreak.dqn import DQN, DQNConfig, PrioritizedReplayBuffer
from firebreak.dqn.algorithm import check_saved_replay
from firebreak.dqn.checkpoint import load_checkpoint, save_checkpoint
from firebreak.dqn.replay import ReplayFileError, read_replay_meta
from firebreak.train import train

CONFIGS = Path(__file__).parents[1] / "ray_configs"
SHAPE = (2, 3, 3)  # (C, H, W)


def fragment(rng, length: int, end_every: int = 5):
    """`length` consecutive steps of one env, an episode end every `end_every` steps, random obs."""
    obs = rng.random((length + 1, *SHAPE)).astype(np.float16)
    terminated = np.arange(length) % end_every == end_every - 1
    next_obs = obs[1:].copy()
    next_obs[terminated] = rng.random((int(terminated.sum()), *SHAPE)).astype(np.float16)  # final obs, not reset
    return dict(obs=obs[:-1], action=rng.integers(0, 9, length), reward=rng.random(length).astype(np.float32),
                terminated=terminated, truncated=np.zeros(length, bool), next_obs=next_obs,
                next_mask=rng.random((length, 9)) > 0.3)


def filled_buffer(capacity: int = 64, fragments: int = 6, seed: int = 0) -> PrioritizedReplayBuffer:
    """A buffer that has wrapped (6 x 12 slots > 64) and whose priorities were updated."""
    rng = np.random.default_rng(seed)
    buffer = PrioritizedReplayBuffer(capacity, SHAPE, gamma=0.9, n_step=3, alpha=0.6, seed=seed)
    for _ in range(fragments):
        buffer.add_fragment(**fragment(rng, 10))
        batch = buffer.sample(8, beta=0.4)
        buffer.update_priorities(batch.indices, rng.random(8) * 5)
    return buffer


def assert_same_batches(a: PrioritizedReplayBuffer, b: PrioritizedReplayBuffer, draws: int = 5):
    for _ in range(draws):
        x, y = a.sample(16, beta=0.5), b.sample(16, beta=0.5)
        for field in x._fields:
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field), err_msg=field)


def test_a_restored_replay_samples_the_same_batches_with_the_same_priorities(tmp_path):
    original = filled_buffer()
    assert original.full and 0 < original.cursor < 64  # the ring wrapped: the write position matters
    path = original.save(tmp_path / "replay.npz")
    restored = filled_buffer(fragments=2, seed=7)  # other contents and RNG: all of it is replaced
    restored.load(path)
    assert (restored.cursor, restored.full, len(restored)) == (original.cursor, True, len(original))
    leaves = np.arange(64)
    np.testing.assert_array_equal(restored.tree.values(leaves), original.tree.values(leaves))  # priorities
    assert restored.tree.total == pytest.approx(original.tree.total, rel=1e-12)
    assert restored.max_priority == original.max_priority > 1.0
    assert_same_batches(original, restored)  # the saved RNG state: the same draws follow
    # and it keeps learning the same way: the next fragment overwrites the same slots
    rng = np.random.default_rng(3)
    more = fragment(rng, 10)
    original.add_fragment(**more)
    restored.add_fragment(**more)
    assert_same_batches(original, restored)


def test_a_partly_filled_replay_saves_only_its_written_slots(tmp_path):
    buffer = PrioritizedReplayBuffer(1000, SHAPE, gamma=0.9, n_step=3, seed=0)
    buffer.add_fragment(**fragment(np.random.default_rng(0), 10))  # 10 steps + 2 final obs = 12 slots
    path = buffer.save(tmp_path / "replay.npz")
    per_slot = 2 * 18 + 4 + 9 + 8 + 4 + 8 + 1 + 1 + 8  # float16 obs, static index, mask, action, return, n_steps, 2 flags, priority
    assert buffer.file_nbytes() == 12 * per_slot
    assert path.stat().st_size < 12 * per_slot + 8192  # npz headers only, not 1000 slots
    restored = PrioritizedReplayBuffer(1000, SHAPE, gamma=0.9, n_step=3, seed=0)
    restored.load(path)
    assert len(restored) == 10 and restored.cursor == 12 and not restored.full
    assert_same_batches(buffer, restored)


def test_a_replay_that_does_not_fit_is_refused_naming_the_file_and_the_fix(tmp_path):
    path = filled_buffer().save(tmp_path / "latest.replay.npz")
    smaller = PrioritizedReplayBuffer(32, SHAPE, gamma=0.9, n_step=3, alpha=0.6)
    with pytest.raises(ReplayFileError, match=r"latest\.replay\.npz: the saved replay does not fit this learner: "
                                              r"learner\.buffer_size \(file 64, now 32\)\. Resume with the settings "
                                              r"it was saved with, or move latest\.replay\.npz out of"):
        smaller.load(path)
    other_tiles = PrioritizedReplayBuffer(64, (2, 4, 4), gamma=0.9, n_step=3, alpha=0.6)
    with pytest.raises(ReplayFileError, match=r"observation shape \(file \[2, 3, 3\], now \[2, 4, 4\]\)"):
        other_tiles.load(path)
    other_n = PrioritizedReplayBuffer(64, SHAPE, gamma=0.9, n_step=1, alpha=0.6)
    with pytest.raises(ReplayFileError, match=r"learner\.n_step \(file 3, now 1\)"):  # returns are stored n-step
        other_n.load(path)
    assert len(smaller) == len(other_tiles) == len(other_n) == 0  # nothing was half-loaded
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ReplayFileError, match=r"junk\.npz: not a readable firebreak replay file"):
        smaller.load(tmp_path / "junk.npz")


def test_an_interrupted_save_leaves_the_previous_file_and_no_partial_one(tmp_path, monkeypatch):
    buffer = filled_buffer()
    path = buffer.save(tmp_path / "latest.replay.npz")
    before = path.read_bytes()
    buffer.add_fragment(**fragment(np.random.default_rng(1), 10))
    real_write = np.lib.format.write_array
    calls = []

    def disk_full_on_the_third_array(fid, array, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            fid.write(b"\0" * 100)  # part of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fid, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", disk_full_on_the_third_array)
    with pytest.raises(OSError, match="No space left"):
        buffer.save(path)
    assert len(calls) == 3  # it failed inside the write
    assert [p.name for p in tmp_path.iterdir()] == ["latest.replay.npz"]  # no temp file left behind
    assert path.read_bytes() == before  # the previous save, whole
    calls.clear()
    with pytest.raises(OSError, match="No space left"):
        buffer.save(tmp_path / "first.replay.npz")
    assert not (tmp_path / "first.replay.npz").exists()
    monkeypatch.undo()
    (tmp_path / "latest.replay.npz.x1y2.tmp").write_bytes(b"PK")  # what a save killed by SIGKILL leaves
    buffer.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["latest.replay.npz"] and path.read_bytes() != before


def small_learner(buffer_size: int = 64, reward_scale: float = 1.0) -> DQN:
    config = DQNConfig(network="basic", network_kwargs={"hidden": 4, "num_layers": 1}, buffer_size=buffer_size,
                       batch_size=8, learning_starts=20, n_step=3, reward_scale=reward_scale)
    return DQN(config, SHAPE, device="cpu", seed=0)


def add(learner: DQN, rng, steps: int = 10):
    f = fragment(rng, steps)
    learner.add_fragment(f["obs"][None], f["action"][None], f["reward"][None], f["terminated"][None],
                         f["truncated"][None], f["next_obs"][None], f["next_mask"][None])


def test_a_learner_state_names_its_saved_replay_and_a_new_learner_reloads_it(tmp_path, caplog):
    rng = np.random.default_rng(0)
    learner = small_learner()
    for _ in range(3):
        add(learner, rng)
    learner.train(2)
    assert "replay" not in learner.state_dict()  # nothing saved: a resume refills
    learner.save_replay(tmp_path / "latest.replay.npz")
    ckpt = save_checkpoint(tmp_path / "latest.pt", learner_state=learner.state_dict(), model={}, config={},
                           counters={})
    payload = load_checkpoint(ckpt)  # as --resume, or a restarted learner actor, reads it
    assert payload["learner"]["replay"]["file"] == str((tmp_path / "latest.replay.npz").resolve())
    fresh = small_learner()
    assert not fresh.can_train
    fresh.load_state_dict(payload["learner"])
    assert len(fresh.replay) == len(learner.replay) == 30 and fresh.can_train  # no refill: trains at once
    assert fresh.train(1)["updates"] == 3

    # the file moves on with later checkpoints: an older state does not take a newer replay
    older = learner.state_dict()
    add(learner, rng)
    assert "replay" not in learner.state_dict()  # the replay changed since it was saved
    learner.save_replay(tmp_path / "latest.replay.npz")
    stale = small_learner()
    with caplog.at_level(logging.WARNING, logger="firebreak.dqn"):
        stale.load_state_dict(older)
    assert len(stale.replay) == 0 and "holds the replay of a later checkpoint" in caplog.text

    mismatched = small_learner(reward_scale=100.0)  # stored returns are scaled: they would be wrong
    with pytest.raises(ReplayFileError, match=r"reward_scale \(file 1\.0, now 100\.0\)"):
        mismatched.load_state_dict(learner.state_dict())


def test_the_driver_refuses_a_saved_replay_whose_static_layers_are_stored_otherwise(tmp_path):
    config = DQNConfig(network="basic", network_kwargs={"hidden": 4, "num_layers": 1}, buffer_size=256,
                       batch_size=8, learning_starts=20, n_step=3)
    learner = DQN(config, SHAPE, device="cpu", static_channels=(0,), episode_steps=4)
    f = fragment(np.random.default_rng(0), 10)
    f["obs"][:, 0] = f["next_obs"][:, 0] = 0.5  # layer 0 is the same in every episode
    learner.add_fragment(*(f[key][None] for key in ("obs", "action", "reward", "terminated", "truncated",
                                                    "next_obs", "next_mask")))
    learner.save_replay(tmp_path / "latest.replay.npz")
    state = learner.state_dict()
    check_saved_replay(state, config, SHAPE, static_channels=(0,), episode_steps=4)  # the same layout: fits
    # longer episodes (a larger env.budget) size the store of static layers otherwise: the driver says so
    # before a learner actor starts, whose load would fail as a dead actor
    with pytest.raises(ReplayFileError, match=r"latest\.replay\.npz: the saved replay stores its episode-static "
                                              r"layers as \{'static channels': \[0\], 'static slots': 77\}, this "
                                              r"learner as \{'static channels': \[0\], 'static slots': 64\}"):
        check_saved_replay(state, config, SHAPE, static_channels=(0,), episode_steps=8)
    with pytest.raises(ReplayFileError, match=r"'static channels': \[\]"):
        check_saved_replay(state, config, SHAPE)  # an env without static layers
    with pytest.raises(ReplayFileError, match=r"'static slots': 77\}, this learner as"):  # the learner itself agrees
        DQN(config, SHAPE, device="cpu", static_channels=(0,), episode_steps=8).load_state_dict(state)


def test_saving_an_unchanged_replay_again_writes_nothing(tmp_path):
    learner = small_learner()
    add(learner, np.random.default_rng(0))
    path = learner.save_replay(tmp_path / "latest.replay.npz")
    token = read_replay_meta(path)["extra"]["token"]
    learner.save_replay(path)
    assert read_replay_meta(path)["extra"]["token"] == token
    learner.replay.sample(4, 0.4)  # sampling moves the RNG: a change
    learner.save_replay(path)
    assert read_replay_meta(path)["extra"]["token"] != token


@pytest.mark.timeout(120)
def test_resume_without_actors_continues_with_the_saved_replay(tmp_path, monkeypatch):
    overrides = [f"run.out_dir={tmp_path}", "rollout.runners=0", "learner.save_replay=true",
                 "learner.learning_starts=32", "run.eval_every_env_steps=100000", "run.name=replay"]
    cfg = load_config(CONFIGS / "smoke.yaml", [*overrides, "run.total_env_steps=64"])
    first = train(cfg, progress=False)
    ckpt_dir = Path(first["run_dir"]) / "checkpoints"
    saved = read_replay_meta(ckpt_dir / "latest.replay.npz")
    assert saved["num_transitions"] == first["env_steps"] == 64  # every step of the run

    sizes = []
    load_state_dict = DQN.load_state_dict

    def spy(self, state):
        load_state_dict(self, state)
        sizes.append(len(self.replay))

    monkeypatch.setattr(DQN, "load_state_dict", spy)
    cfg = load_config(CONFIGS / "smoke.yaml", [*overrides, "run.total_env_steps=96"])
    second = train(cfg, resume="latest", progress=False)
    assert sizes == [64]  # the resumed learner starts with the saved replay, not an empty one
    events = EventAccumulator(str(Path(second["run_dir"]) / "tb"))
    events.Reload()
    resumed = [e.value for e in events.Scalars("learner/replay_size") if e.step > 64]
    assert resumed and min(resumed) > 64  # it trained on the restored replay from its first fragments
    assert second["updates"] > first["updates"]
    assert read_replay_meta(ckpt_dir / "latest.replay.npz")["num_transitions"] == 96

    cfg = load_config(CONFIGS / "smoke.yaml", [*overrides, "run.total_env_steps=128", "learner.buffer_size=1000"])
    with pytest.raises(ReplayFileError, match=r"latest\.replay\.npz: the saved replay does not fit this learner: "
                                              r"learner\.buffer_size \(file 2000, now 1000\)"):
        train(cfg, resume="latest", progress=False)  # told before any learner or runner starts


@pytest.mark.timeout(120)
def test_a_resumed_run_that_refills_its_replay_waits_for_learning_starts_and_owes_nothing_for_the_refill(tmp_path):
    """learning_starts counts replay transitions for the driver as for the learner: without a
    saved replay, the resumed run's first 32 steps refill it and buy no updates."""
    overrides = [f"run.out_dir={tmp_path}", "rollout.runners=0", "learner.learning_starts=32",
                 "learner.replay_ratio=0.25", "run.eval_every_env_steps=100000", "run.name=refill"]
    first = train(load_config(CONFIGS / "smoke.yaml", [*overrides, "run.total_env_steps=64"]), progress=False)
    assert first["updates"] == 0.25 * (64 - 32)
    second = train(load_config(CONFIGS / "smoke.yaml", [*overrides, "run.total_env_steps=128"]), resume="latest",
                   progress=False)
    assert second["env_steps"] == 128
    assert second["updates"] - first["updates"] == 0.25 * (64 - 32)  # not 0.25 x 64 in a burst once refilled
    events = EventAccumulator(str(Path(second["run_dir"]) / "tb"))
    events.Reload()
    sizes = {e.step: e.value for e in events.Scalars("learner/replay_size") if e.step > 64}
    assert sizes and min(sizes.values()) >= 32  # no update ran on a replay under learning_starts
