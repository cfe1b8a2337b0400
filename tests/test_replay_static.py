"""Replay slots keep the episode-static layers once per episode; batches are the same as without."""

import numpy as np
import pytest

from firebreak.dqn.replay import PrioritizedReplayBuffer, default_static_slots, replay_nbytes

SHAPE = (5, 4, 4)
STATIC = (1, 3)  # not contiguous: the layers are put back in their places


class Episodes:
    """Consecutive fragments of one env whose episodes (random lengths) keep channels STATIC fixed."""

    def __init__(self, seed: int, lengths=(2, 9)):
        self.rng, self.lengths = np.random.default_rng(seed), lengths
        self._new_episode()

    def _new_episode(self):
        self.left = int(self.rng.integers(*self.lengths))
        self.static = self.rng.random((len(STATIC), *SHAPE[1:])).astype(np.float16)
        self.obs = self._observe()

    def _observe(self):
        obs = self.rng.random(SHAPE).astype(np.float16)
        obs[list(STATIC)] = self.static
        return obs

    def fragment(self, steps: int) -> dict:
        obs, final, terminated = [], [], np.zeros(steps, bool)
        for t in range(steps):
            obs.append(self.obs)
            self.left -= 1
            next_obs = self._observe()
            if self.left == 0:
                terminated[t] = True
                final.append(next_obs)
                self._new_episode()
            else:
                self.obs = next_obs
                if t == steps - 1:
                    final.append(next_obs)
        cells = SHAPE[1] * SHAPE[2]
        return {"obs": np.stack(obs), "action": self.rng.integers(0, cells, steps),
                "reward": self.rng.random(steps).astype(np.float32), "terminated": terminated,
                "truncated": np.zeros(steps, bool), "next_obs": None, "final_obs": np.stack(final),
                "next_mask": self.rng.random((steps, cells)) < 0.7}


def _fill(buffers, fragments: int, seed: int = 0):
    envs = [Episodes(seed + k) for k in range(3)]  # fragments of three envs interleave, as from runners
    rng = np.random.default_rng(seed)
    for i in range(fragments):
        fragment = envs[i % 3].fragment(int(rng.integers(1, 12)))
        for buffer in buffers:
            buffer.add_fragment(**fragment)


def _same_batches(plain, static, draws: int = 20):
    for _ in range(draws):
        want, got = plain.sample(16, beta=0.5), static.sample(16, beta=0.5)
        for name, value in want._asdict().items():
            np.testing.assert_array_equal(getattr(got, name), value, err_msg=name)
        td = np.random.default_rng(len(plain)).random(16)
        plain.update_priorities(want.indices, td)
        static.update_priorities(got.indices, td)


def test_batches_equal_the_uncompressed_replays_through_wraparound():
    plain = PrioritizedReplayBuffer(200, SHAPE, gamma=0.9, n_step=3, seed=0)
    static = PrioritizedReplayBuffer(200, SHAPE, gamma=0.9, n_step=3, seed=0, static_channels=STATIC, static_slots=64)
    _fill([plain, static], 30)
    _same_batches(plain, static)
    _fill([plain, static], 200, seed=1)  # the ring wraps several times, and so does the static store
    assert plain.full and static.static_written > 64 and static.retired_early == 0
    assert len(plain) == len(static)
    _same_batches(plain, static)
    # the observations stored cost (C - S) layers a slot; S layers once per episode segment
    assert static.obs.shape[1:] == (SHAPE[0] - len(STATIC), *SHAPE[1:])
    assert static.nbytes == replay_nbytes(200, SHAPE, static_channels=len(STATIC), static_slots=64)


def test_too_small_a_static_store_retires_transitions_early_and_counts_them_never_mixes_layers():
    plain = PrioritizedReplayBuffer(300, SHAPE, gamma=0.9, n_step=2, seed=0)
    static = PrioritizedReplayBuffer(300, SHAPE, gamma=0.9, n_step=2, seed=0, static_channels=STATIC, static_slots=4)
    _fill([plain, static], 60)
    # retired transitions are gone before their slots come round (plain loses them only then)
    assert static.retired_early > 0 and 0 < len(plain) - len(static) <= static.retired_early
    assert len(static) == static.is_transition.sum() and static.static_refs.sum() == static.used_slots - (
        static.static_index[: static.used_slots] < 0).sum()
    live = np.flatnonzero(static.is_transition)
    assert plain.is_transition[live].all()
    np.testing.assert_array_equal(static.observations(live), plain.observations(live))
    bootstrap = (live + static.n_steps[live]) % static.capacity
    np.testing.assert_array_equal(static.observations(bootstrap), plain.observations(bootstrap))
    batch = static.sample(32, beta=0.4)
    assert static.is_transition[batch.indices].all()


def test_a_static_channel_that_changes_within_an_episode_is_refused():
    buffer = PrioritizedReplayBuffer(50, SHAPE, gamma=0.9, static_channels=STATIC)
    fragment = Episodes(0, lengths=(20, 21)).fragment(6)
    fragment["obs"][4, 3, 0, 0] += 1
    with pytest.raises(ValueError, match=r"static channels \[3\] change within an episode"):
        buffer.add_fragment(**fragment)


def test_a_saved_static_replay_loads_and_samples_on_as_the_original(tmp_path):
    original = PrioritizedReplayBuffer(120, SHAPE, gamma=0.9, n_step=3, seed=0, static_channels=STATIC, static_slots=40)
    _fill([original], 40)
    path = original.save(tmp_path / "replay.npz")
    restored = PrioritizedReplayBuffer(120, SHAPE, gamma=0.9, n_step=3, seed=0, static_channels=STATIC, static_slots=40)
    restored.load(path)
    _fill([original, restored], 20, seed=5)  # new episodes, and continued ones found by their layers again
    assert restored.static_written == original.static_written
    _same_batches(original, restored)
    other = PrioritizedReplayBuffer(120, SHAPE, gamma=0.9, n_step=3, static_channels=(1,), static_slots=40)
    with pytest.raises(ValueError, match="episode-static layers"):
        other.load(path)


def test_a_fuelbreak_sized_slot_is_about_4x_smaller():
    from firebreak.env import FuelBreakEnv

    shape, steps = (18, 64, 64), round(0.05 * 64 * 64)  # a 64 x 64 tile, budget 5 %: 205-step episodes
    assert len(FuelBreakEnv(["synthetic:24"]).static_channels) == 14
    full = replay_nbytes(150_000, shape)
    once = replay_nbytes(150_000, shape, static_channels=14, static_slots=default_static_slots(150_000, steps))
    assert full / once > 3.9


def test_final_obs_only_stores_what_full_next_obs_stores():
    full, compact = (PrioritizedReplayBuffer(100, SHAPE, gamma=0.9, n_step=3, seed=0) for _ in range(2))
    episodes = Episodes(3)
    for _ in range(8):
        fragment = episodes.fragment(7)
        ends = fragment["terminated"].copy()
        ends[-1] = True
        next_obs = np.concatenate([fragment["obs"][1:], fragment["obs"][:1]])
        next_obs[ends] = fragment["final_obs"]
        compact.add_fragment(**fragment)
        full.add_fragment(**{**fragment, "next_obs": next_obs, "final_obs": None})
    for name in ("obs", "mask", "action", "returns", "n_steps", "terminated", "is_transition"):
        np.testing.assert_array_equal(getattr(compact, name), getattr(full, name), err_msg=name)
    with pytest.raises(ValueError, match="final_obs holds 0 observations"):
        compact.add_fragment(**{**episodes.fragment(7), "final_obs": fragment["final_obs"][:0]})
