"""Proportional prioritized replay (Schaul et al. 2016) with n-step returns, fed by fragments.

Input is a fragment: T consecutive steps of one env, possibly spanning episode ends (the
env autoresets, so obs[t + 1] starts a new episode after a step with terminated or
truncated). `next_obs[t]` is the observation that action t led to; at an episode end it is
the final observation of that episode, never the reset one.

Storage. A ring of `capacity` observation slots. Each step of a fragment takes one slot
(its obs); each episode end and the fragment's last step take one more slot for their
final `next_obs`. Inside an episode, next_obs[t] is obs[t + 1], already stored in the
following slot, so each observation is stored once and the bootstrap observation of the
n-step transition in slot s always sits in slot s + k (k <= n rewards summed). The price:
`capacity` counts slots, and a full buffer holds capacity * T / (T + ends) transitions
(about 97 % for 64-step fragments and 100-step episodes). The n-step windows stop at
episode ends and at the fragment's end (there they bootstrap after k < n steps), so they
never need a slot another fragment wrote, and overwriting the oldest fragment from its start
never leaves a surviving transition without its bootstrap slot.

Episode-static layers. `static_channels` names the S layers an env keeps fixed for a whole
episode (FuelBreakEnv: 14 of 18, terrain, canopy and fuel behaviour). A slot then holds only
the C - S dynamic layers and an index into a ring of `static_slots` entries of S layers; each
episode segment of a fragment finds its episode's entry again by content (an episode spans many
fragments) or takes the next entry no slot holds. Sampling puts the layers back: batches equal
those of a buffer without static channels. An entry still held when every entry is (too few
`static_slots` for the episodes) is taken anyway and the transitions using it are retired,
counted in `retired_early`; `default_static_slots` leaves room for 1.5x the episodes a full
buffer holds. A layer named static that changes within an episode raises ValueError.

Memory: observations dominate. With the default float16, one slot of C x H x W costs
2 * (C - S) * H * W bytes plus H * W bytes of action mask, 26 B of index, action, return, step
count and flags, and its share of the static entries (2 * S * H * W bytes each). 1.5e5 slots of
18 x 64 x 64 with 14 static layers and 205-step episodes take 37.7 kB each, 5.7 GB (5.3 GiB);
without static layers 152 kB, 22.7 GB. `obs_dtype`, `capacity`, `static_channels` and
`static_slots` set it, `nbytes` reports it. The arrays come from np.zeros, so the OS commits the
pages only as slots are first written. float16 keeps about 3 significant digits up to 65504:
observations must arrive normalised (the env's job).

Priorities: new transitions get the largest priority seen so far; after a learner update,
`update_priorities(indices, |td error|)` stores (|td| + eps) ** alpha in a sum tree, and
`sample` draws slot i with probability P(i) = p_i / sum(p), stratified over batch_size
equal segments of the total, with importance-sampling weights
w_i = (N P(i)) ** -beta / max_j (N P(j)) ** -beta = (p_i / min_j p_j) ** -beta.
Call `update_priorities` for a sampled batch before adding further fragments: a slot
overwritten in between would inherit the old transition's priority.

Persistence: `save(path)` writes the written slots, their priorities, the write position, the
counts and the sampling RNG to one uncompressed .npz, atomically (temp file + rename); `load(path)`
reads it back into a buffer of the same capacity and observation shape, so sampling continues
exactly as it would have. On disk a slot costs what it holds in memory (dynamic observation
layers, static index, mask, 22 B of scalars) plus an 8 B priority, and each written static entry
its layers (`file_nbytes`); only written slots and entries are saved.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPLAY_FORMAT = "firebreak-replay"
REPLAY_VERSION = 2  # 2: episode-static layers stored once per episode
_CHUNK = 64 * 2**20  # bytes read at a time: loading never holds a second copy of the observations


class ReplayFileError(ValueError):
    """A replay file that cannot be loaded into this buffer; the message names the file and the fix."""


class SumTree:
    """Sum tree and min tree over `capacity` non-negative leaf values, in flat numpy arrays.

    Node 1 is the root, node i has children 2i and 2i + 1, leaf j is node `size + j` with
    `size` the next power of two >= capacity. Updates and searches take whole batches of
    leaves and loop only over the log2(size) levels, never over items. Each parent is
    recomputed as the sum of its children (not incremented), so no rounding drift builds up.
    Zero leaves count as +inf in the min tree: `min` is the smallest positive value.
    """

    def __init__(self, capacity: int):
        self.depth = max(capacity - 1, 0).bit_length()
        self.size = 1 << self.depth
        self.sums = np.zeros(2 * self.size, np.float64)
        self.mins = np.full(2 * self.size, np.inf)

    @property
    def total(self) -> float:
        return float(self.sums[1])

    @property
    def min(self) -> float:
        return float(self.mins[1])

    def values(self, leaves: np.ndarray) -> np.ndarray:
        return self.sums[self.size + leaves]

    def update(self, leaves: np.ndarray, values: np.ndarray) -> None:
        """Set leaf `leaves[i]` to `values[i]` (values >= 0) and refresh their ancestors."""
        nodes = self.size + np.asarray(leaves)
        self.sums[nodes] = values
        self.mins[nodes] = np.where(values > 0, values, np.inf)
        for _ in range(self.depth):
            nodes = np.unique(nodes // 2)
            self.sums[nodes] = self.sums[2 * nodes] + self.sums[2 * nodes + 1]
            self.mins[nodes] = np.minimum(self.mins[2 * nodes], self.mins[2 * nodes + 1])

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Leaf j with sum(leaves < j) <= prefix < sum(leaves <= j), for each prefix.

        Prefixes must lie in [0, total). A zero leaf is never returned: descending right
        needs prefix >= left sum while prefix < node sum, so the right sum is positive.
        """
        prefix = np.minimum(prefix, np.nextafter(self.total, 0.0))
        nodes = np.ones(len(prefix), np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.sums[left]
            go_right = prefix >= left_sum
            # The clamp keeps prefix < right sum against rounding in the subtraction.
            right_sum = self.sums[left + 1]
            prefix = np.where(go_right, np.minimum(prefix - left_sum, np.nextafter(right_sum, 0.0)), prefix)
            nodes = left + go_right
        return nodes - self.size


def n_step_returns(rewards: np.ndarray, segment_end: np.ndarray, gamma: float, n_step: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Discounted n-step returns of `rewards` (T,): step t sums rewards t .. t + k - 1 with
    k = min(n_step, segment_end[t] - t + 1), segment_end[t] >= t being the last step of t's
    episode (or fragment). Returns (returns (T,) float64, k (T,) int64)."""
    steps = np.arange(len(rewards))
    n_steps = np.minimum(n_step, segment_end - steps + 1)
    returns = np.zeros(len(rewards), np.float64)
    for m in range(n_step):
        returns += np.where(m < n_steps, gamma**m * rewards[np.minimum(steps + m, len(rewards) - 1)], 0.0)
    return returns, n_steps


def replay_fingerprint(capacity: int, obs_shape, gamma: float, n_step: int, alpha: float,
                       obs_dtype: np.dtype | type = np.float16) -> dict:
    """What a saved replay must share with the buffer it is loaded into, keyed by what sets it."""
    return {"learner.buffer_size": capacity, "observation shape": [int(n) for n in obs_shape],
            "observation dtype": np.dtype(obs_dtype).name, "learner.gamma": gamma, "learner.n_step": n_step,
            "learner.alpha": alpha}


def read_replay_meta(path: str | Path) -> dict:
    """The metadata of a file written by `PrioritizedReplayBuffer.save` (format, fingerprint,
    counts, `extra`); reads only that, not the arrays."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive, archive.open("meta.npy") as member:
            meta = json.loads(str(np.lib.format.read_array(member)))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ReplayFileError(f"{path}: not a readable firebreak replay file ({err}); delete it to start "
                              "with an empty replay") from None
    if not isinstance(meta, dict) or meta.get("format") != REPLAY_FORMAT:
        raise ReplayFileError(f"{path}: not a firebreak replay file (no format '{REPLAY_FORMAT}')")
    if meta.get("version") != REPLAY_VERSION:
        raise ReplayFileError(f"{path}: replay file version {meta.get('version')}, this firebreak reads "
                              f"{REPLAY_VERSION}; delete it to start with an empty replay")
    return meta


def replay_layout(static_channels, static_slots: int) -> dict:
    """How a replay stores its episode-static layers (saved with it; a file loads only into the same)."""
    return {"static channels": sorted(int(c) for c in static_channels), "static slots": int(static_slots)}


def check_replay_file(path: str | Path, fingerprint: dict, layout: dict | None = None, **expected) -> dict:
    """The file's metadata, or ReplayFileError naming the file, each differing key (saved and
    wanted value) and the fix when its `replay_fingerprint`, `replay_layout` (unless None) or
    `extra` values differ."""
    path = Path(path)
    meta = read_replay_meta(path)
    saved = {**meta["fingerprint"], **meta["extra"]}
    differ = [f"{key} (file {saved.get(key)!r}, now {value!r})" for key, value in {**fingerprint, **expected}.items()
              if saved.get(key) != value]
    if differ:
        raise ReplayFileError(
            f"{path}: the saved replay does not fit this learner: {'; '.join(differ)}. Resume with the settings "
            f"it was saved with, or move {path.name} out of {path.parent} to start with an empty replay")
    if layout is not None and meta.get("layout") != layout:
        raise ReplayFileError(f"{path}: the saved replay stores its episode-static layers as {meta.get('layout')}, "
                              f"this learner as {layout}; resume with the env it was saved with, or move {path.name} "
                              f"out of {path.parent} to start with an empty replay")
    return meta


def _read_npy_into(archive: zipfile.ZipFile, name: str, out: np.ndarray, path: Path) -> None:
    """Fill the C-contiguous `out` from member `name`.npy of an uncompressed .npz, in chunks."""
    try:
        member = archive.open(f"{name}.npy")
    except KeyError:
        raise ReplayFileError(f"{path}: replay file lacks '{name}'; it is damaged, delete it") from None
    with member:
        version = np.lib.format.read_magic(member)
        npy = np.lib.format
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran_order, dtype = read_header(member)
        if shape != out.shape or dtype != out.dtype or fortran_order:
            raise ReplayFileError(f"{path}: '{name}' holds {dtype}{list(shape)}, expected "
                                  f"{out.dtype}{list(out.shape)}; the file is damaged, delete it")
        view = memoryview(out.reshape(-1).view(np.uint8))
        position = 0
        while position < len(view):
            count = member.readinto(view[position:position + _CHUNK])
            if not count:
                raise ReplayFileError(f"{path}: '{name}' ends early; the file is truncated, delete it")
            position += count


class ReplayBatch(NamedTuple):
    """A sampled batch of B n-step transitions (numpy, ready for `DQNUpdate.update`).

    The TD target is returns + gamma ** n_steps * (1 - terminated) * Q(next_obs, next_mask).
    """

    obs: np.ndarray  # (B, C, H, W) obs_dtype, state the action was taken in
    action: np.ndarray  # (B,) int64, row * W + col
    returns: np.ndarray  # (B,) float32, sum_{m < k} gamma**m r_{t+m}
    n_steps: np.ndarray  # (B,) int64, k <= n rewards summed before bootstrapping
    terminated: np.ndarray  # (B,) bool, the episode terminated within those k steps
    next_obs: np.ndarray  # (B, C, H, W) obs_dtype, state after k steps (bootstrap state)
    next_mask: np.ndarray  # (B, H*W) bool, valid actions in next_obs
    weights: np.ndarray  # (B,) float32, importance-sampling weights, max 1
    indices: np.ndarray  # (B,) int64, slots, for update_priorities


class PrioritizedReplayBuffer:
    """Prioritized n-step replay over a ring of `capacity` observation slots.

    obs_shape: (C, H, W); actions are Discrete(H*W). gamma and n_step define the stored
    returns and must match the learner's. alpha: priority exponent (0 = uniform).
    priority_eps: added to |td error| so no transition becomes unsampleable.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, int, int],
        gamma: float,
        n_step: int = 1,
        alpha: float = 0.6,
        priority_eps: float = 1e-6,
        obs_dtype: np.dtype | type = np.float16,
        seed: int | None = None,
        static_channels: tuple[int, ...] = (),
        static_slots: int | None = None,
    ):
        channels, height, width = obs_shape
        self.capacity = capacity
        self.obs_shape = (channels, height, width)
        self.gamma = gamma
        self.n_step = n_step
        self.alpha = alpha
        self.priority_eps = priority_eps
        self.rng = np.random.default_rng(seed)

        self.static_channels = tuple(sorted(int(c) for c in static_channels))
        if len(set(self.static_channels)) != len(self.static_channels) or not all(0 <= c < channels for c in self.static_channels):
            raise ValueError(f"static_channels {static_channels!r}: give distinct channel indices in 0..{channels - 1}")
        self.dynamic_channels = tuple(c for c in range(channels) if c not in self.static_channels)
        self.static_slots = default_static_slots(capacity) if static_slots is None else int(static_slots)
        if self.static_channels and self.static_slots < 1:
            raise ValueError(f"static_slots must be >= 1, got {static_slots}")
        self.obs = np.zeros((capacity, len(self.dynamic_channels), height, width), obs_dtype)
        # The episode-static layers, once per episode: slot i's are static[static_index[i]].
        self.static = np.zeros((self.static_slots if self.static_channels else 0, len(self.static_channels), height, width),
                               obs_dtype)
        self.static_index = np.full(capacity, -1, np.int32)  # -1: the slot holds no observation
        self.static_refs = np.zeros(len(self.static), np.int64)  # slots holding each entry
        self.static_cursor = 0
        self.static_written = 0  # entries written so far (the ring fills from entry 0)
        self.retired_early = 0  # transitions dropped because their static entry was needed again
        self._static_keys: dict[bytes, int] = {}  # content digest -> entry, to find an episode's entry again
        # Valid actions in the state stored in the slot; only read for bootstrap states.
        self.mask = np.zeros((capacity, height * width), bool)
        self.action = np.zeros(capacity, np.int64)
        self.returns = np.zeros(capacity, np.float32)
        self.n_steps = np.zeros(capacity, np.int64)
        self.terminated = np.zeros(capacity, bool)
        self.is_transition = np.zeros(capacity, bool)  # False for empty and final-obs-only slots

        self.tree = SumTree(capacity)
        self.max_priority = 1.0
        self.cursor = 0
        self.full = False  # the ring has wrapped: every slot was written
        self.num_transitions = 0
        self.changes = 0  # counts add_fragment, sample and update_priorities calls: tells a saved copy is current

    def __len__(self) -> int:
        """Number of sampleable transitions."""
        return self.num_transitions

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays at full capacity (sum tree included)."""
        arrays = (self.obs, self.static, self.static_index, self.static_refs, self.mask, self.action, self.returns, self.n_steps,
                  self.terminated, self.is_transition, self.tree.sums, self.tree.mins)
        return sum(a.nbytes for a in arrays)

    # Per-slot arrays, saved for the written slots [0, used).
    _SLOT_ARRAYS = ("obs", "static_index", "mask", "action", "returns", "n_steps", "terminated", "is_transition")

    @property
    def used_slots(self) -> int:
        """Slots written so far (the ring fills from slot 0)."""
        return self.capacity if self.full else self.cursor

    def _fingerprint(self) -> dict:
        return replay_fingerprint(self.capacity, self.obs_shape, self.gamma, self.n_step, self.alpha, self.obs.dtype)

    def _layout(self) -> dict:
        return replay_layout(self.static_channels, len(self.static))

    def save(self, path: str | Path, **extra) -> Path:
        """Write the buffer to `path` (.npz, uncompressed) atomically: a temp file in the same
        folder, renamed over `path` once complete, so an interrupted save leaves the previous file
        (or none) and no partial one (a temp file left by a killed process goes at the next save). `extra`: JSON-able values kept in the file's metadata (see
        `read_replay_meta`). Costs `file_nbytes` bytes of disk."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        used = self.used_slots
        meta = {"format": REPLAY_FORMAT, "version": REPLAY_VERSION, "fingerprint": self._fingerprint(),
                "used": used, "cursor": self.cursor, "full": self.full, "num_transitions": self.num_transitions,
                "max_priority": self.max_priority, "rng": self.rng.bit_generator.state, "extra": extra,
                "layout": self._layout(), "static_cursor": self.static_cursor, "static_written": self.static_written,
                "retired_early": self.retired_early}
        arrays = {name: getattr(self, name)[:used] for name in self._SLOT_ARRAYS}
        arrays["static"] = self.static[:min(self.static_written, len(self.static))]
        arrays["priorities"] = self.tree.values(np.arange(used))
        for leftover in path.parent.glob(f"{path.name}.*.tmp"):  # of a save killed outright (SIGKILL)
            leftover.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                np.savez(file, meta=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def file_nbytes(self) -> int:
        """Bytes of payload a `save` now writes (the .npz adds ~4 KB of headers): per written
        slot its observation, mask, action, return, step count and flags, plus a float64 priority;
        the written static entries."""
        per_slot = sum(getattr(self, name)[:1].nbytes for name in self._SLOT_ARRAYS) + 8
        return self.used_slots * per_slot + self.static[:min(self.static_written, len(self.static))].nbytes

    def load(self, path: str | Path, **expected) -> dict:
        """Replace the buffer's contents with a file written by `save`; returns its metadata.

        Raises ReplayFileError, naming the file, the differing keys and the fix, when the file was
        saved by a buffer of another capacity, observation shape or dtype, gamma, n_step or alpha,
        or when an `expected` value differs from the `extra` it was saved with; then the buffer is
        untouched. Observations are read in chunks straight into the buffer's arrays (no second
        copy in memory); a file found damaged while reading leaves the buffer partly overwritten.
        """
        path = Path(path)
        meta = check_replay_file(path, self._fingerprint(), self._layout(), **expected)
        used, static_used = int(meta["used"]), min(int(meta["static_written"]), len(self.static))
        with zipfile.ZipFile(path) as archive:
            for name in self._SLOT_ARRAYS:
                _read_npy_into(archive, name, getattr(self, name)[:used], path)
            _read_npy_into(archive, "static", self.static[:static_used], path)
            priorities = np.empty(used, np.float64)
            _read_npy_into(archive, "priorities", priorities, path)
        self.static_cursor, self.static_written = int(meta["static_cursor"]), int(meta["static_written"])
        self.retired_early = int(meta["retired_early"])
        self._static_keys = {_digest(self.static[i]): i for i in range(static_used)}
        self.static_index[used:] = -1
        written = self.static_index[:used]
        self.static_refs = np.bincount(written[written >= 0], minlength=len(self.static)).astype(np.int64)
        self.is_transition[used:] = False
        self.tree = SumTree(self.capacity)
        self.tree.update(np.arange(used), priorities)
        self.cursor, self.full = int(meta["cursor"]), bool(meta["full"])
        self.num_transitions, self.max_priority = int(meta["num_transitions"]), float(meta["max_priority"])
        self.rng.bit_generator.state = meta["rng"]
        self.changes += 1
        return meta

    def add_fragment(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray | None,
        next_mask: np.ndarray,
        *,
        final_obs: np.ndarray | None = None,
    ) -> None:
        """Store T consecutive steps of one env as n-step transitions.

        obs, next_obs: (T, C, H, W); action: (T,) int; reward: (T,) float;
        terminated, truncated: (T,) bool; next_mask: (T, H*W) bool, valid actions in next_obs.
        A terminated transition is never bootstrapped; a truncated one bootstraps from
        its final next_obs. Raises ValueError if next_obs[t] != obs[t + 1] inside an episode
        (the compact storage relies on it). Instead of next_obs, `final_obs` may give only the
        next observations the storage needs, those of the steps that terminated or truncated and
        of the last step, in time order (what a runner ships: `firebreak.rollout.Transitions`).
        """
        num_steps = len(action)
        steps = np.arange(num_steps)
        ends = terminated | truncated
        ends[-1] = True  # the fragment's last next_obs is not in this fragment's obs
        if (next_obs is None) == (final_obs is None):
            raise ValueError("add_fragment: give next_obs (T, C, H, W) or final_obs (episode ends + 1, C, H, W), not both")
        if next_obs is not None:
            inner = ~ends[:-1]
            if not np.array_equal(next_obs[:-1][inner], obs[1:][inner]):
                raise ValueError(
                    "add_fragment: next_obs[t] differs from obs[t + 1] at a step that neither "
                    "terminated nor truncated; a fragment must hold consecutive steps of one env"
                )
            final_obs = next_obs[ends]
        elif len(final_obs) != int(ends.sum()):
            raise ValueError(f"add_fragment: final_obs holds {len(final_obs)} observations; this fragment has "
                             f"{int(ends.sum())} episode ends (counting its last step)")
        num_slots = num_steps + int(ends.sum())
        if num_slots > self.capacity:
            raise ValueError(f"add_fragment: fragment needs {num_slots} slots, capacity is {self.capacity}")
        if self.static_channels and int(ends.sum()) > len(self.static):
            raise ValueError(f"add_fragment: fragment has {int(ends.sum())} episode segments, the replay keeps the "
                             f"static layers of {len(self.static)} (static_slots)")

        # Slot layout: step t at position t + (ends before t); each end is followed by its final obs.
        position = steps + np.cumsum(ends) - ends
        slots = (self.cursor + np.arange(num_slots)) % self.capacity
        step_slots = slots[position]
        final_slots = slots[position[ends] + 1]

        # n-step returns, cut at the first episode end (or fragment end) at or after t.
        segment_end = np.minimum.accumulate(np.where(ends, steps, num_steps)[::-1])[::-1]
        returns, n_steps = n_step_returns(reward, segment_end, self.gamma, self.n_step)
        last = steps + n_steps - 1

        self.num_transitions -= int(self.is_transition[slots].sum())
        self.is_transition[slots] = False
        dynamic, static = list(self.dynamic_channels), list(self.static_channels)
        if static:
            held = self.static_index[slots]
            np.subtract.at(self.static_refs, held[held >= 0], 1)
            self.static_index[slots] = -1
            # one static entry per episode segment (episode part in this fragment): segment g
            # holds steps with segment[t] == g and final observation final_obs[g]
            segment = np.concatenate([[0], np.cumsum(ends[:-1])])
            entries: list[int] = []
            for g in range(int(ends.sum())):
                entries.append(self._static_entry(obs[segment == g][:, static], final_obs[g, static], entries))
            entries = np.array(entries, np.int32)
            self.static_index[step_slots] = entries[segment]
            self.static_index[final_slots] = entries
            np.add.at(self.static_refs, self.static_index[slots], 1)
            obs, final_obs = obs[:, dynamic], final_obs[:, dynamic]
        self.obs[step_slots] = obs
        self.obs[final_slots] = final_obs
        self.mask[slots] = False  # slots that start an episode: their mask is never read
        self.mask[slots[position + 1]] = next_mask
        self.action[step_slots] = action
        self.returns[step_slots] = returns
        self.n_steps[step_slots] = n_steps
        self.terminated[step_slots] = terminated[last]
        self.is_transition[step_slots] = True
        self.num_transitions += num_steps

        self.tree.update(slots, np.where(self.is_transition[slots], self.max_priority**self.alpha, 0.0))
        self.full = self.full or self.cursor + num_slots >= self.capacity
        self.cursor = (self.cursor + num_slots) % self.capacity
        self.changes += 1

    def sample(self, batch_size: int, beta: float) -> ReplayBatch:
        """Draw batch_size transitions with probability proportional to priority.

        beta: importance-sampling exponent, annealed towards 1 over training.
        """
        if self.num_transitions == 0:
            raise ValueError("sample: the replay buffer is empty")
        self.changes += 1
        segment = self.tree.total / batch_size
        slots = self.tree.find((np.arange(batch_size) + self.rng.random(batch_size)) * segment)
        weights = (self.tree.values(slots) / self.tree.min) ** -beta
        bootstrap = (slots + self.n_steps[slots]) % self.capacity
        return ReplayBatch(
            obs=self.observations(slots),
            action=self.action[slots],
            returns=self.returns[slots],
            n_steps=self.n_steps[slots],
            terminated=self.terminated[slots],
            next_obs=self.observations(bootstrap),
            next_mask=self.mask[bootstrap],
            weights=weights.astype(np.float32),
            indices=slots,
        )

    def observations(self, slots: np.ndarray) -> np.ndarray:
        """(len(slots), C, H, W): the whole observations of `slots`, static layers put back."""
        if not self.static_channels:
            return self.obs[slots]
        out = np.empty((len(slots),) + self.obs_shape, self.obs.dtype)
        out[:, list(self.dynamic_channels)] = self.obs[slots]
        out[:, list(self.static_channels)] = self.static[self.static_index[slots]]
        return out

    def _static_entry(self, layers: np.ndarray, final: np.ndarray, pinned: list[int]) -> int:
        """The static entry holding one episode segment's static layers (``layers``: (steps, S,
        H, W), ``final``: its final observation's): the entry of the same layers when one holds
        them (an earlier fragment of the episode), else the next entry no slot holds, in ring
        order. When every entry is held, the one at the cursor is taken and the transitions that
        use it are retired (counted in `retired_early`: `static_slots` is too small for the
        episodes). The ``pinned`` entries, taken by this fragment's earlier segments, are kept."""
        first = layers[0]
        if not (np.all(layers == first) and np.array_equal(final, first)):
            moving = [self.static_channels[c] for c in range(len(first))
                      if not (np.all(layers[:, c] == first[c]) and np.array_equal(final[c], first[c]))]
            raise ValueError(f"add_fragment: static channels {moving} change within an episode; the env's "
                             "static_channels must name only layers fixed for a whole episode")
        key = _digest(first)
        entry = self._static_keys.get(key)
        if entry is not None and np.array_equal(self.static[entry], first):
            return entry
        size = len(self.static)
        free = [(self.static_cursor + k) % size for k in range(size)]
        free = [e for e in free if self.static_refs[e] == 0 and e not in pinned]
        if free:
            entry = free[0]
        else:
            entry = next((self.static_cursor + k) % size for k in range(size) if (self.static_cursor + k) % size not in pinned)
            users = np.flatnonzero(self.static_index == entry)
            transitions = users[self.is_transition[users]]
            self.is_transition[transitions] = False
            self.tree.update(transitions, np.zeros(len(transitions)))
            self.num_transitions -= len(transitions)
            self.retired_early += len(transitions)
            self.static_index[users] = -1
            self.static_refs[entry] = 0
        if entry < min(self.static_written, size):  # its old layers: no longer to be found
            old = _digest(self.static[entry])
            if self._static_keys.get(old) == entry:
                del self._static_keys[old]
        self.static[entry] = first
        self._static_keys[key] = entry
        self.static_cursor = (entry + 1) % size
        self.static_written += 1
        return entry

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set the priorities of sampled slots from their absolute TD errors."""
        self.changes += 1
        priorities = np.abs(td_errors).astype(np.float64) + self.priority_eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(indices, priorities**self.alpha)


def _digest(layers: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(layers).view(np.uint8), digest_size=16).digest()


def default_static_slots(capacity: int, episode_steps: int | None = None) -> int:
    """Static entries a replay of `capacity` slots keeps: room for the episodes its slots hold
    (one entry each; an episode of T steps takes about T + 1 slots) with half again as many
    spare for the episodes still in progress; `episode_steps` None: assumes 8-step episodes."""
    per_episode = (8 if episode_steps is None else max(int(episode_steps), 1)) + 1
    return max(64, math.ceil(1.5 * capacity / per_episode))


def replay_nbytes(capacity: int, obs_shape: tuple[int, int, int], obs_dtype: np.dtype | type = np.float16,
                  static_channels: int = 0, static_slots: int | None = None) -> int:
    """Bytes a full `PrioritizedReplayBuffer(capacity, obs_shape, obs_dtype=..., static_channels=...,
    static_slots=...)` holds (its `nbytes`), without allocating it: per slot the (C - S)*H*W
    values of the dynamic layers, a 4 B static index, an H*W mask and 22 B of action, return,
    step count and flags; the S*H*W values and an 8 B count of each static entry (S =
    `static_channels`, a count here); plus the sum and min trees."""
    channels, height, width = obs_shape
    itemsize = np.dtype(obs_dtype).itemsize
    slot = (channels - static_channels) * height * width * itemsize + 4 + height * width + 8 + 4 + 8 + 1 + 1
    entries = (default_static_slots(capacity) if static_slots is None else static_slots) if static_channels else 0
    tree_leaves = 1 << max(capacity - 1, 0).bit_length()
    return capacity * slot + entries * (static_channels * height * width * itemsize + 8) + 2 * (2 * tree_leaves) * 8
