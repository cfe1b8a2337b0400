"""`FuelBreakEnv`: place fuel breaks one cell at a time so that simulated fires burn less.

An episode takes the next landscape of its sources, draws `n_scenarios` fire scenarios once
(common random numbers: every step is judged on the same fires), simulates them untreated,
then lets the agent treat `budget` x cells cells. Each step turns one burnable cell into
bare ground and re-simulates only the scenarios that cell could change
(`firebreak.fire.IncrementalSimulator`).

`info` of every step: burned_fraction (of burnable cells, mean over scenarios, now),
baseline_burned_fraction (untreated), relative_reduction (1 - now / untreated), breaks_placed,
budget_cells, resimulated (scenarios re-run by this step); the last step adds sim_seconds (the
episode's fire-simulation time, also `env.sim_seconds`).

Reward of a step: (mean burned cells before - after) / burnable cells, the mean taken over
the episode's scenarios. The return therefore telescopes to the share of burnable cells the
breaks saved: baseline burned fraction - final burned fraction.

Registered with gymnasium as ``firebreak/FuelBreak-v0`` when this module is imported
(``gymnasium.make("firebreak.env:firebreak/FuelBreak-v0")`` imports it by itself).

Observation: float32 (C, H, W), layers named by `FuelBreakEnv.observation_layers`
(`OBSERVATION_LAYERS`), each scaled to roughly [0, 1] (see `_observation_static`), clipped to
[-5, 5]: float16 holds them to 2^-11 relative (the runners ship and the replay stores float16).
`FuelBreakEnv.static_channels` names the layers fixed for a whole episode. Action:
Discrete(H * W), cell = (action // W, action % W); `action_masks()` is True
where a cell may still be treated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Sequence

import gymnasium as gym
import numpy as np

from .fire import FireSeason, IncrementalSimulator, Moisture, ScenarioSampler, Weather, directional_intensity, surface_fire
from .centrality import downstream_protection
from .landscape import Landscape, LandscapeError, load_landscapes, synthetic_landscape

#: Burn periods of 12-24 h: the Vermont hardwood litter (TL6) spreads at about 1 m/min, so a
#: shorter fire barely leaves its ignition cell there; with these periods an untreated fire burns
#: about 11 % of a real 64 x 64 tile and about half of a synthetic grass/shrub one.
DEFAULT_SEASON = FireSeason(duration_min=(720.0, 1440.0))
DEFAULT_LANDSCAPES = ("sample:64:train", "synthetic:64")
SYNTHETIC_KINDS = ("mixed", "grass", "grass_shrub", "shrub")

OBSERVATION_LAYERS: tuple[str, ...] = (
    "slope",  # rise/run, clipped to [0, 2]
    "aspect_sin",  # east component of the downhill direction
    "aspect_cos",  # north component
    "elevation",  # z-score within the landscape
    "canopy_cover",  # fraction
    "canopy_height",  # m / 30
    "canopy_base_height",  # m / 10
    "canopy_bulk_density",  # kg/m3 / 0.3
    "spread_rate",  # no-wind head rate, log1p(m/min) / log1p(100)
    "fireline_intensity",  # no-wind head intensity, log1p(kW/m) / log1p(1e5)
    "intensity_north",  # fireline intensity of a front moving north, mean over the episode's weathers
    "intensity_east",
    "intensity_south",
    "intensity_west",  # (same scaling as fireline_intensity)
    "burn_probability",  # share of the episode's scenarios that burn the cell now
    "downstream_protection",  # DPV now, log1p(cells) / log1p(H * W) (see downstream_protection)
    "breaks",  # 1 where treated
    "treatable",  # 1 where a break may still go (burnable, untreated)
)
_DYNAMIC = ("burn_probability", "downstream_protection", "breaks", "treatable")
STATIC_CHANNELS: tuple[int, ...] = tuple(i for i, name in enumerate(OBSERVATION_LAYERS) if name not in _DYNAMIC)
#: The optional last layer (``fire_count_layer=True``): the episode's planning-fire count N as
#: log(N) / log(4096), constant over the tile (0.5 at 64 fires, 0.83 at 1,024). The other
#: layers are means per fire and do not tell 64 fires from 1,024; a network trained across
#: counts needs to, to trust a many-fire DPV more than a few-fire one (docs/experiments.md, 15).
FIRE_COUNT_LAYER = "planning_fires"
FIRE_COUNT_SCALE = 4096


def observation_layers(fire_count_layer: bool = False) -> tuple[str, ...]:
    """The layers of `FuelBreakEnv(fire_count_layer=...)`'s observations, in order."""
    return OBSERVATION_LAYERS + ((FIRE_COUNT_LAYER,) if fire_count_layer else ())


def fire_count_value(n_fires: int) -> float:
    """The `FIRE_COUNT_LAYER` value for `n_fires` planning fires."""
    return float(np.log(n_fires) / np.log(FIRE_COUNT_SCALE))


gym.register(id="firebreak/FuelBreak-v0", entry_point="firebreak.env:FuelBreakEnv")


class InvalidActionError(ValueError):
    """An action named a cell that cannot be treated (out of range, non-burnable, already a break)."""


@dataclass(frozen=True)
class _Synthetic:
    """A landscape source that generates a new synthetic landscape per episode."""

    size: int
    kinds: tuple[str, ...]


def _parse_sources(landscapes) -> list[list[Landscape] | _Synthetic]:
    if isinstance(landscapes, (str, Landscape)):
        landscapes = [landscapes]
    sources: list[list[Landscape] | _Synthetic] = []
    fixed: list[Landscape] = []
    for item in landscapes:
        if isinstance(item, Landscape):
            fixed.append(item)
        elif str(item).startswith("synthetic:"):
            _, size, *kind = str(item).split(":")
            kinds = tuple(kind) or SYNTHETIC_KINDS
            if not size.isdigit() or any(k not in SYNTHETIC_KINDS + ("timber",) for k in kinds):
                raise ValueError(f"landscapes: {item!r} should be 'synthetic:<size>' or 'synthetic:<size>:<kind>' "
                                 f"with kind in {SYNTHETIC_KINDS + ('timber',)}")
            sources.append(_Synthetic(int(size), kinds))
        else:
            sources.append(load_landscapes(item))
    if fixed:
        sources.insert(0, fixed)
    if not sources:
        raise ValueError("landscapes: give at least one landscape or source")
    return sources


def _source_shape(source) -> tuple[int, int]:
    return (source.size, source.size) if isinstance(source, _Synthetic) else source[0].shape


class FuelBreakEnv(gym.Env):
    """Fuel-break placement (module docstring has the contract).

    Args:
        landscapes: a source or a list of them: `Landscape` objects, anything
            `firebreak.landscape.load_landscapes` reads (``"sample:64:train"``, a path), or
            ``"synthetic:<size>[:<kind>]"`` (a new synthetic landscape each episode). All must
            share one shape. Episodes cycle through the sources, and through each source's
            landscapes in order; ``reset(seed=k)`` starts that cycle at episode k.
        budget: share of the landscape's cells to treat per episode (0.05 = 5 %).
        n_scenarios: fires per episode; or a list of counts, one drawn per episode (uniformly,
            from the episode's seed), so that a policy learns to plan on any of them.
            `n_scenarios` is then the current episode's count, `fire_counts` the list.
        season: the `FireSeason` scenarios are drawn from (default `DEFAULT_SEASON`).
        invalid_action: ``"raise"`` (default) raises `InvalidActionError`; ``"penalty"`` makes
            an invalid action a wasted break: no cell is treated, the reward is
            ``-invalid_penalty`` and the budget still shrinks by one.
        invalid_penalty: see `invalid_action`.
        fire_count_layer: add `FIRE_COUNT_LAYER` as the last observation layer, for a policy
            trained across fire counts (`n_scenarios` a list).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        landscapes=DEFAULT_LANDSCAPES,
        *,
        budget: float = 0.05,
        n_scenarios: int | Sequence[int] = 16,
        season: FireSeason | None = None,
        invalid_action: Literal["raise", "penalty"] = "raise",
        invalid_penalty: float = 0.01,
        fire_count_layer: bool = False,
    ):
        if not 0.0 < budget < 1.0:
            raise ValueError(f"budget {budget!r}: give the share of cells to treat, in (0, 1), e.g. 0.05")
        counts = [n_scenarios] if np.isscalar(n_scenarios) else list(n_scenarios)
        if not counts or any(int(n) != n or n < 1 for n in counts):
            raise ValueError(f"n_scenarios {n_scenarios!r}: give a positive whole number of fires per episode, "
                             "or a list of them (one drawn per episode)")
        if invalid_action not in ("raise", "penalty"):
            raise ValueError(f"invalid_action {invalid_action!r}: choose 'raise' or 'penalty'")
        self._sources = _parse_sources(landscapes)
        shapes = {_source_shape(s) for s in self._sources}
        shapes |= {ls.shape for s in self._sources if not isinstance(s, _Synthetic) for ls in s}
        if len(shapes) != 1:
            raise LandscapeError(f"landscapes have several shapes {sorted(shapes)}; one env needs one shape: tile them "
                                 "to a common size (firebreak.landscape.tile)")
        self.shape: tuple[int, int] = shapes.pop()
        self.budget = budget
        #: The fire counts an episode may draw; `n_scenarios` is the current episode's.
        self.fire_counts: tuple[int, ...] = tuple(int(n) for n in counts)
        self.n_scenarios = self.fire_counts[0]
        self.season = season or DEFAULT_SEASON
        self.invalid_action = invalid_action
        self.invalid_penalty = float(invalid_penalty)
        #: The observation's layers, in order (`OBSERVATION_LAYERS`, then `FIRE_COUNT_LAYER` if asked).
        self.observation_layers: tuple[str, ...] = observation_layers(fire_count_layer)
        #: Channels fixed for a whole episode (terrain, canopy, fuel behaviour, the fire count;
        #: 14 of 18 without it): the replay stores them once per episode.
        self.static_channels: tuple[int, ...] = STATIC_CHANNELS + ((len(OBSERVATION_LAYERS),) if fire_count_layer else ())
        rows, cols = self.shape
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (len(self.observation_layers), rows, cols), np.float32)
        self.action_space = gym.spaces.Discrete(rows * cols)
        self._episode = 0
        self.landscape: Landscape | None = None
        self.simulator: IncrementalSimulator | None = None

    # --- episode set-up -------------------------------------------------------------------

    def _next_landscape(self) -> Landscape:
        source = self._sources[self._episode % len(self._sources)]
        turn = self._episode // len(self._sources)
        self._episode += 1
        if isinstance(source, _Synthetic):
            kind = source.kinds[turn % len(source.kinds)]
            return synthetic_landscape((source.size,) * 2, int(self.np_random.integers(2**31)), kind=kind)
        return source[turn % len(source)]

    def draw_episode(self, seed: int | None = None) -> tuple[Landscape, int]:
        """The landscape and fire count of the episode ``reset(seed=seed)`` plays, drawn as reset
        draws them (reset calls it first) but without simulating: call it on a spare env to size
        an episode before playing it."""
        super().reset(seed=seed)
        if seed is not None:
            self._episode = int(seed)
        self.landscape = self._next_landscape()
        if len(self.fire_counts) > 1:  # one count: no draw, so seeds give the episodes they always gave
            self.n_scenarios = self.fire_counts[int(self.np_random.integers(len(self.fire_counts)))]
        return self.landscape, self.n_scenarios

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.draw_episode(seed)
        scenarios = ScenarioSampler(int(self.np_random.integers(2**63)), self.season).sample(
            self.landscape, self.n_scenarios)
        started = time.perf_counter()
        self.simulator = IncrementalSimulator(self.landscape, scenarios)
        self.sim_seconds = time.perf_counter() - started
        self._burnable = self.landscape.burnable
        self._n_burnable = max(int(self._burnable.sum()), 1)
        self._budget_cells = min(max(1, round(self.budget * self._burnable.size)), int(self._burnable.sum()))
        self._steps = 0
        self._baseline = self._mean_burned_cells()
        self._burned = self._baseline
        self._obs = self._observation_static(scenarios)
        self._update_dynamic_layers()
        return self._obs.copy(), self._info(resimulated=len(scenarios))

    def _observation_static(self, scenarios) -> np.ndarray:
        ls = self.landscape
        obs = np.zeros(self.observation_space.shape, np.float32)
        layer = {name: obs[i] for i, name in enumerate(self.observation_layers)}
        layer["slope"][:] = np.clip(ls.slope, 0.0, 2.0)
        layer["aspect_sin"][:] = np.sin(np.radians(ls.aspect))
        layer["aspect_cos"][:] = np.cos(np.radians(ls.aspect))
        elevation = ls.elevation
        layer["elevation"][:] = (elevation - elevation.mean()) / max(float(elevation.std()), 1.0)
        layer["canopy_cover"][:] = ls.canopy_cover
        layer["canopy_height"][:] = ls.canopy_height / 30.0
        layer["canopy_base_height"][:] = ls.canopy_base_height / 10.0
        layer["canopy_bulk_density"][:] = ls.canopy_bulk_density / 0.3
        # Fuel as physics, not codes: head fire without wind under the episode's mean moisture.
        moisture = Moisture(*np.mean([s.moisture.as_array() for s in scenarios], axis=0))
        calm = surface_fire(ls, Weather(0.0, 0.0, moisture, float(np.mean([s.foliar_moisture for s in scenarios]))))
        layer["spread_rate"][:] = np.log1p(calm.rate) / np.log1p(100.0)
        layer["fireline_intensity"][:] = np.log1p(calm.intensity) / np.log1p(1e5)
        directional = np.mean([directional_intensity(b) for b in self.simulator.behaviours], axis=0)
        for k, name in enumerate(("intensity_north", "intensity_east", "intensity_south", "intensity_west")):
            layer[name][:] = np.log1p(directional[k]) / np.log1p(1e5)
        if FIRE_COUNT_LAYER in layer:
            layer[FIRE_COUNT_LAYER][:] = fire_count_value(self.n_scenarios)
        np.clip(obs, -5.0, 5.0, out=obs)
        return obs

    # --- stepping ---------------------------------------------------------------------------

    def _mean_burned_cells(self) -> float:
        return float(self.simulator.burned.sum(axis=(1, 2)).mean())

    def _update_dynamic_layers(self) -> None:
        index = OBSERVATION_LAYERS.index
        self._obs[index("burn_probability")] = self.simulator.burned.mean(axis=0)
        # log: DPV spans 0 to thousands of cells; its ranking is what matters, and a log keeps
        # the small values of most cells apart.
        self._downstream_protection = downstream_protection(self.simulator)
        self._obs[index("downstream_protection")] = (np.log1p(self._downstream_protection)
                                                     / np.log1p(self._burnable.size))
        self._obs[index("breaks")] = self.simulator.breaks
        self._obs[index("treatable")] = self._burnable & ~self.simulator.breaks

    def observation(self, layers: Sequence[str] | None = None) -> np.ndarray:
        """A copy of the current observation (what the last reset/step returned); with `layers`
        (a checkpoint's ``obs_layers``), those layers in that order, `FIRE_COUNT_LAYER` computed
        if this env does not observe it, so one env serves checkpoints with and without it."""
        if layers is None or tuple(layers) == self.observation_layers:
            return self._obs.copy()
        known = observation_layers(fire_count_layer=True)
        unknown = [name for name in layers if name not in known]
        if unknown:
            raise ValueError(f"observation layers {unknown} are not among this firebreak's "
                             f"{list(known)}; use the firebreak version that "
                             "wrote the checkpoint")
        count = np.full(self.shape, fire_count_value(self.n_scenarios), np.float32)
        return np.stack([self._obs[self.observation_layers.index(name)] if name in self.observation_layers else count
                         for name in layers])

    def action_masks(self) -> np.ndarray:
        """Bool (H * W,): True where a break may still be placed."""
        return (self._burnable & ~self.simulator.breaks).ravel()

    @property
    def burn_probability(self) -> np.ndarray:
        """(H, W) share of the episode's scenarios that burn each cell with the current breaks."""
        return self.simulator.burned.mean(axis=0)

    @property
    def downstream_protection(self) -> np.ndarray:
        """(H, W) downstream protection value with the current breaks: burned cells a break in
        each cell would cut off from their fastest fire path, mean over the episode's scenarios
        (`firebreak.centrality.downstream_protection`)."""
        return self._downstream_protection

    def step(self, action):
        if self.simulator is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._steps >= self._budget_cells:
            raise gym.error.ResetNeeded("the episode has ended (budget spent): call reset()")
        cell = int(action)
        valid = 0 <= cell < self.action_space.n and bool(self.action_masks()[cell])
        self._steps += 1
        resimulated = 0
        if valid:
            mask = np.zeros(self.shape, bool)
            mask.flat[cell] = True
            started = time.perf_counter()
            resimulated = self.simulator.add_breaks(mask)
            self.sim_seconds += time.perf_counter() - started
            burned = self._mean_burned_cells()
            reward = (self._burned - burned) / self._n_burnable
            self._burned = burned
            self._update_dynamic_layers()
        elif self.invalid_action == "raise":
            self._steps -= 1
            raise InvalidActionError(self._explain_invalid(cell))
        else:
            reward = -self.invalid_penalty
        terminated = self._steps >= self._budget_cells or not self.action_masks().any()
        info = self._info(resimulated)
        if terminated:
            # Timings vary run to run, so they stay out of every other step's info (gymnasium's
            # determinism check compares infos).
            info["sim_seconds"] = self.sim_seconds
        return self._obs.copy(), float(reward), terminated, False, info

    def _explain_invalid(self, cell: int) -> str:
        rows, cols = self.shape
        if not 0 <= cell < rows * cols:
            return f"action {cell} is outside Discrete({rows * cols}) for a {rows}x{cols} landscape"
        where = f"action {cell} = cell (row {cell // cols}, col {cell % cols})"
        if self.simulator.breaks.flat[cell]:
            return f"{where} is already a break; mask actions with env.action_masks()"
        return (f"{where} is not burnable (fuel code {int(self.landscape.fuel_model.flat[cell])}); "
                "mask actions with env.action_masks(), or create the env with invalid_action='penalty'")

    def _info(self, resimulated: int) -> dict:
        baseline = self._baseline / self._n_burnable
        burned = self._burned / self._n_burnable
        return {
            "burned_fraction": burned,
            "baseline_burned_fraction": baseline,
            "relative_reduction": 1.0 - burned / baseline if baseline > 0 else 0.0,
            "breaks_placed": int(self.simulator.breaks.sum()),
            "budget_cells": self._budget_cells,
            "resimulated": resimulated,
        }
