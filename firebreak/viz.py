"""Pictures of a trained fuel-break policy: one greedy episode, its fires, its training run.

    policy = load_policy("runs/local/checkpoints/best.pt")
    landscape, label = eval_landscape(policy.config, tile=0)
    episode = play_episode(policy, landscape, tile=0, budget=0.05, n_scenarios=32)
    plot_overlay(episode, "slope", "out/fuelbreaks_overlay.png")

The episode is played like `firebreak.evaluate` plays landscape i: ``reset(seed=EVAL_SEED_BASE +
i)`` on an env holding only that landscape, greedy actions on the masked Q-values. The
comparison scores every policy's final breaks on independent fires (``SCORING_SEED_BASE + i``),
as `firebreak.evaluate` does. Maps are north-up (row 0 = north edge), axes in km from the
north-west corner. Burned fractions are shares of the burnable cells, mean over fires.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, TwoSlopeNorm  # noqa: E402
from tqdm import tqdm  # noqa: E402

from .config import Config, config_from_dict  # noqa: E402
from .dqn.checkpoint import CheckpointError, build_policy_network, load_checkpoint  # noqa: E402
from .dqn.networks import masked_argmax  # noqa: E402
from .env import FIRE_COUNT_LAYER, OBSERVATION_LAYERS, FuelBreakEnv, observation_layers  # noqa: E402
from .evaluate import EVAL_SEED_BASE, SCORING_SEED_BASE, burned_fraction, eval_landscapes  # noqa: E402
from .fire import FUEL_MODELS, ScenarioSampler, simulate_many  # noqa: E402
from .landscape import Landscape  # noqa: E402
from .placement import BASELINES, run_episode  # noqa: E402


class VizError(ValueError):
    """Bad input to the plots (tile index, landscape shape, checkpoint content); the message
    names the input and the fix."""


#: --background choices: landscape attribute, colour-bar label, colormap, fixed range or None.
BACKGROUNDS: dict[str, tuple[str, str, str, tuple[float, float] | None]] = {
    "slope": ("slope", "slope (rise/run)", "Greys", None),
    "fuel": ("fuel_model", "fuel model (LANDFIRE code)", None, None),
    "elevation": ("elevation", "elevation (m)", "gist_earth", None),
    "aspect": ("aspect", "aspect (degrees clockwise from north, downhill facing)", "twilight", (0.0, 360.0)),
    "canopy_cover": ("canopy_cover", "canopy cover (fraction)", "Greens", (0.0, 1.0)),
    "canopy_height": ("canopy_height", "canopy height (m)", "Greens", None),
    "canopy_base_height": ("canopy_base_height", "canopy base height (m)", "Greens", None),
    "canopy_bulk_density": ("canopy_bulk_density", "canopy bulk density (kg/m³)", "Greens", None),
}
_NONBURNABLE_NAMES = {91: "NB1 urban", 92: "NB2 snow/ice", 93: "NB3 agriculture", 98: "NB8 water", 99: "NB9 bare"}
#: Muted earth tones for fuel models, none near the cyan-magenta of the breaks.
_FUEL_COLOURS = ["#d9c89e", "#a6bd7d", "#6f9a5d", "#e3b37a", "#b58b5d", "#8c8c6a", "#cfd8a8", "#9e7b52",
                 "#c9c0b3", "#7a9a7e", "#e6d98a", "#b3a58c"]
_NONBURNABLE_COLOURS = {91: "#7f7f7f", 92: "#f2f2f2", 93: "#d6cfa0", 98: "#a9c4dc", 99: "#bdbdbd"}
BREAK_CMAP = "cool"  # cyan (first) to magenta (last): stands out on grey, green and earth backgrounds
POLICY_LABELS = {"dqn": "DQN (greedy)", "random": "random", "burnprob": "burn probability", "dpv": "DPV",
                 "domirank": "DomiRank"}


# --- inputs -------------------------------------------------------------------------------------


@dataclass
class TrainedPolicy:
    """A checkpoint's greedy Q-network with what it was trained on."""

    path: Path
    network: torch.nn.Module
    config: Config
    obs_shape: tuple[int, int, int]
    counters: dict[str, float]
    layers: tuple[str, ...]  # the observation layers it reads, in order (`FuelBreakEnv.observation(layers)`)

    @property
    def run_dir(self) -> Path:
        """``runs/<name>/`` for ``runs/<name>/checkpoints/<file>.pt``."""
        return self.path.resolve().parent.parent

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """(H * W,) Q-values of one observation (C, H, W)."""
        with torch.no_grad():
            return self.network(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()


def load_policy(path: str | Path) -> TrainedPolicy:
    """The policy network of a firebreak checkpoint; `CheckpointError` for anything else."""
    path = Path(path)
    payload = load_checkpoint(path)
    model = payload["model"]
    layers = tuple(model.get("obs_layers", []))
    if layers not in (observation_layers(False), observation_layers(True)):
        raise CheckpointError(f"{path}: its observation layers {model.get('obs_layers')} differ from this firebreak's "
                              f"{list(OBSERVATION_LAYERS)} (+ {FIRE_COUNT_LAYER!r}); use the firebreak version that "
                              "trained it.")
    try:
        config = config_from_dict(payload["config"], str(path))
        network = build_policy_network(payload)
    except (ValueError, RuntimeError, TypeError, KeyError) as err:  # ConfigError, unknown kinds
        raise CheckpointError(f"{path}: config or weights do not rebuild a network "
                              f"({str(err).splitlines()[0]}); give a file from runs/<name>/checkpoints/.") from None
    shape = tuple(int(v) for v in model["obs_shape"])
    return TrainedPolicy(path, network, config, shape, dict(payload["counters"]), layers)


def eval_landscape(config: Config, tile: int = 0, source: str | None = None) -> tuple[Landscape, str]:
    """Tile `tile` of `source` (default: the run's ``run.eval_landscapes``, which its periodic
    evaluation played) and a label.

    Sources are read as training's evaluation reads them (`firebreak.evaluate.eval_landscapes`,
    every tile of a ``sample:<size>`` source): tile i of ``synthetic:<size>[:<kind>]`` is
    ``synthetic_landscape((size, size), 2**31 + i, kind)``, seeds above the training range, the
    kinds cycling unless one is named."""
    source = source or config.run.eval_landscapes
    if tile < 0:
        raise VizError(f"--tile {tile}: give a tile index >= 0")
    try:
        landscapes = eval_landscapes(source, split="all", n=tile + 1 if source.startswith("synthetic:") else None)
    except ValueError as err:  # LandscapeError too
        raise VizError(str(err)) from None
    if tile >= len(landscapes):
        raise VizError(f"--tile {tile}: {source} has {len(landscapes)} landscape(s), "
                       f"give --tile 0 to {len(landscapes) - 1}")
    landscape = landscapes[tile]
    if source.startswith("synthetic:"):
        return landscape, f"{source} tile {tile} ({landscape.metadata['source']})"
    return landscape, f"{source} tile {tile}"


def check_shape(policy: TrainedPolicy, landscape: Landscape, label: str) -> None:
    if landscape.shape != policy.obs_shape[1:]:
        raise VizError(f"{label} is {landscape.shape[0]}x{landscape.shape[1]} cells but the checkpoint "
                       f"{policy.path} was trained on {policy.obs_shape[1]}x{policy.obs_shape[2]}: give a "
                       f"--landscape of that shape (e.g. tile it with python -m firebreak.landscape tile)")


# --- the episode --------------------------------------------------------------------------------


@dataclass
class Episode:
    """One greedy episode and the fires it was judged on."""

    landscape: Landscape
    label: str
    tile: int
    budget: float
    env: FuelBreakEnv
    breaks: list[int]  # flat cell indices in placement order
    burned_after_step: list[float]  # burned fraction after each step (episode fires)
    q_maps: dict[int, tuple[np.ndarray, np.ndarray, int]]  # step -> (Q (H,W) NaN where masked, breaks so far, action)
    untreated: Any = None  # simulate_many result of the episode fires without breaks
    info: dict = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return EVAL_SEED_BASE + self.tile

    @property
    def order(self) -> np.ndarray:
        """(H, W) placement step (1-based) of each break, NaN elsewhere."""
        order = np.full(self.landscape.shape, np.nan)
        order.flat[self.breaks] = np.arange(1, len(self.breaks) + 1)
        return order


def play_episode(policy: TrainedPolicy, landscape: Landscape, *, label: str, tile: int, budget: float,
                 n_scenarios: int, q_fractions=(0.0, 0.25, 0.5, 0.75)) -> Episode:
    """Greedy episode from ``reset(seed=EVAL_SEED_BASE + tile)``; keeps the masked Q-maps of the
    steps at `q_fractions` of the budget, and the untreated fires for comparison."""
    env = FuelBreakEnv([landscape], budget=budget, n_scenarios=n_scenarios)
    _, info = env.reset(seed=EVAL_SEED_BASE + tile)
    n_steps = info["budget_cells"]
    keep = sorted({min(int(round(f * n_steps)), n_steps - 1) for f in q_fractions})
    episode = Episode(landscape, label, tile, budget, env, [], [], {})
    done = False
    while not done:
        mask = env.action_masks()
        q = policy.q_values(env.observation(policy.layers))
        action = int(masked_argmax(torch.as_tensor(q[None]), torch.as_tensor(mask[None]))[0])
        if len(episode.breaks) in keep:
            episode.q_maps[len(episode.breaks)] = (np.where(mask, q, np.nan).reshape(landscape.shape),
                                                   env.simulator.breaks.copy(), action)
        _, _, done, truncated, info = env.step(action)
        done = done or truncated
        episode.breaks.append(action)
        episode.burned_after_step.append(info["burned_fraction"])
    episode.info = info
    episode.untreated = simulate_many(landscape, env.simulator.scenarios)
    return episode


# --- drawing helpers ----------------------------------------------------------------------------


def _extent(landscape: Landscape) -> tuple[float, float, float, float]:
    rows, cols = landscape.shape
    return (0.0, cols * landscape.cell_size / 1000, rows * landscape.cell_size / 1000, 0.0)


def _map_axes(ax, landscape: Landscape, title: str, ylabel: bool = True) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("km east →", fontsize=8)
    if ylabel:
        ax.set_ylabel("km south ↓ (north up)", fontsize=8)
    ax.tick_params(labelsize=7)


def _cell_xy(landscape: Landscape, flat) -> tuple[np.ndarray, np.ndarray]:
    """Centres (km) of flat cell indices, for scatter markers."""
    rows, cols = np.divmod(np.asarray(flat), landscape.shape[1])
    km = landscape.cell_size / 1000
    return (cols + 0.5) * km, (rows + 0.5) * km


def draw_background(ax, fig, landscape: Landscape, layer: str, colorbar: bool = True, alpha: float = 1.0):
    """The `layer` (a `BACKGROUNDS` key) as an image with a labelled colour bar."""
    if layer not in BACKGROUNDS:
        raise VizError(f"--background {layer!r}: choose one of {', '.join(BACKGROUNDS)}")
    attr, label, cmap, limits = BACKGROUNDS[layer]
    data = getattr(landscape, attr)
    extent = _extent(landscape)
    if layer == "fuel":
        codes = np.unique(data)
        index = np.searchsorted(codes, data)
        burnable = iter(_FUEL_COLOURS * (1 + len(codes) // len(_FUEL_COLOURS)))
        colours = [_NONBURNABLE_COLOURS.get(int(c)) or next(burnable) for c in codes]
        image = ax.imshow(index, cmap=ListedColormap(colours), norm=BoundaryNorm(np.arange(len(codes) + 1) - 0.5,
                                                                                  len(codes)),
                          extent=extent, interpolation="nearest", alpha=alpha)
        if colorbar:
            bar = fig.colorbar(image, ax=ax, ticks=np.arange(len(codes)), fraction=0.046, pad=0.04)
            names = [FUEL_MODELS[c].name if c in FUEL_MODELS else _NONBURNABLE_NAMES.get(int(c), str(c))
                     for c in codes]
            bar.ax.set_yticklabels([f"{c}: {n[:34]}" for c, n in zip(codes, names)], fontsize=6)
            bar.set_label(label, fontsize=8)
        return image
    vmin, vmax = limits or (float(np.min(data)), float(np.max(data)) if np.ptp(data) > 0 else float(np.min(data)) + 1)
    image = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest", alpha=alpha)
    if colorbar:
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return image


def _draw_breaks(ax, landscape: Landscape, mask: np.ndarray, colour: str = "black"):
    """Break cells as solid cells of one colour."""
    overlay = np.ma.masked_where(~mask, np.ones(landscape.shape))
    return ax.imshow(overlay, cmap=ListedColormap([colour]), extent=_extent(landscape), interpolation="nearest",
                     vmin=0, vmax=1)


def _outline(ax, landscape: Landscape, mask: np.ndarray, colour: str = "black") -> None:
    """Outline the cells of `mask` (contour of an upsampled mask, so edges follow the cells)."""
    fine = 8
    km = landscape.cell_size / 1000 / fine
    rows, cols = landscape.shape
    ax.contour((np.arange(cols * fine) + 0.5) * km, (np.arange(rows * fine) + 0.5) * km,
               np.kron(mask, np.ones((fine, fine))), levels=[0.5], colors=colour, linewidths=0.6)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _prob_max(*maps: np.ndarray) -> float:
    """A shared colour-scale top for burn probabilities: the largest value, rounded up to 0.1."""
    return max(math.ceil(10 * max(float(m.max()) for m in maps) - 1e-9) / 10, 0.1)


def _pct(x: float) -> str:
    return f"{x:.1%}"


# --- the figures --------------------------------------------------------------------------------


def plot_overlay(episode: Episode, background: str, path: Path) -> Path:
    """The background layer with the breaks coloured by placement order."""
    ls = episode.landscape
    fig, ax = plt.subplots(figsize=(8.5, 6.5))
    draw_background(ax, fig, ls, background)
    if background != "fuel" and not ls.burnable.all():
        fine = 8  # contour an upsampled mask so the hatched area follows the cell edges
        km = ls.cell_size / 1000 / fine
        ax.contourf((np.arange(ls.shape[1] * fine) + 0.5) * km, (np.arange(ls.shape[0] * fine) + 0.5) * km,
                    np.kron(~ls.burnable, np.ones((fine, fine))), levels=[0.5, 1.5], colors="none", hatches=["xxx"])
        ax.fill([], [], facecolor="white", edgecolor="black", hatch="xxx", label="not burnable (no break possible)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8, frameon=False)
    order = episode.order
    image = ax.imshow(np.ma.masked_invalid(order), cmap=BREAK_CMAP, vmin=1, vmax=max(len(episode.breaks), 2),
                      extent=_extent(ls), interpolation="nearest")
    _outline(ax, ls, np.isfinite(order))
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.12, location="left")
    bar.set_label("break placement order (step)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    _map_axes(ax, ls, f"DQN fuel breaks on {BACKGROUNDS[background][1].split(' (')[0]}\n{episode.label}: "
                      f"{len(episode.breaks)} breaks ({episode.budget:.0%} of cells), burned "
                      f"{_pct(episode.info['baseline_burned_fraction'])} → {_pct(episode.info['burned_fraction'])}")
    return _save(fig, path)


def plot_burn_probability(episode: Episode, path: Path) -> Path:
    """Burn probability over the episode's fires without and with the breaks, and the change."""
    ls = episode.landscape
    untreated = episode.untreated.burned.mean(axis=0)
    treated = episode.env.burn_probability
    breaks = episode.env.simulator.breaks
    before, after = episode.info["baseline_burned_fraction"], episode.info["burned_fraction"]
    n = len(episode.env.simulator.scenarios)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), layout="constrained")
    extent = _extent(ls)
    vmax = _prob_max(untreated, treated)
    for ax, data, title in ((axes[0], untreated, f"untreated: burned {_pct(before)}"),
                            (axes[1], treated, f"with {len(episode.breaks)} DQN breaks (black): burned {_pct(after)}")):
        image = ax.imshow(data, cmap="YlOrRd", vmin=0, vmax=vmax, extent=extent, interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label(f"burn probability (share of {n} fires)", fontsize=8)
        _map_axes(ax, ls, title, ylabel=ax is axes[0])
    ignitions = np.concatenate([s.ignitions for s in episode.env.simulator.scenarios])
    km = ls.cell_size / 1000
    axes[0].scatter((ignitions[:, 1] + 0.5) * km, (ignitions[:, 0] + 0.5) * km, marker="*", s=40, c="royalblue",
                    edgecolors="white", linewidths=0.5, label="ignitions")
    axes[0].legend(loc="lower right", fontsize=7)
    _draw_breaks(axes[1], ls, breaks)
    diff = treated - untreated
    span = max(float(np.abs(diff[~breaks]).max(initial=0.0)), 1e-3)  # break cells are drawn black
    image = axes[2].imshow(diff, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -span, span), extent=extent,
                           interpolation="nearest")
    _draw_breaks(axes[2], ls, breaks)
    bar = fig.colorbar(image, ax=axes[2], fraction=0.046, pad=0.04)
    bar.set_label("change in burn probability (blue = less)", fontsize=8)
    reduction = 1 - after / before if before > 0 else 0.0
    _map_axes(axes[2], ls, f"treated − untreated: {reduction:.1%} less burned", ylabel=False)
    fig.suptitle(f"Burn probability over the episode's {n} fires, {episode.label}", fontsize=12)
    return _save(fig, path)


def _draw_order(ax, fig, landscape: Landscape, order: np.ndarray):
    """Breaks coloured by placement order (0 = untreated is left clear), with a colour bar."""
    image = ax.imshow(np.ma.masked_less_equal(order, 0), cmap=BREAK_CMAP, vmin=1, vmax=max(int(order.max()), 2),
                      extent=_extent(landscape), interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("break placement order", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return image


def plot_breaks(landscape: Landscape, order: np.ndarray, background: str, path: Path, title: str) -> Path:
    """A plan's breaks (`order`: placement order, 0 untreated, e.g. from
    `firebreak.landscape.load_breaks`) over a background layer."""
    fig, ax = plt.subplots(figsize=(9, 7), layout="constrained")
    draw_background(ax, fig, landscape, background, alpha=0.8)
    _draw_order(ax, fig, landscape, order)
    _map_axes(ax, landscape, title)
    return _save(fig, path)


def plot_plan(landscape: Landscape, order: np.ndarray, before: np.ndarray, after: np.ndarray, path: Path,
              title: str) -> Path:
    """Preview of a treatment plan: the breaks over the fuel models, and the burn probability
    without and with them (same colour scale; breaks in black on the last)."""
    fig, axes = plt.subplots(1, 3, figsize=(20, 6), layout="constrained")
    draw_background(axes[0], fig, landscape, "fuel", colorbar=False, alpha=0.8)
    _draw_order(axes[0], fig, landscape, order)
    _map_axes(axes[0], landscape, f"{int((order > 0).sum())} breaks over the fuel models")
    # Fitted to the data: on a whole landscape most fires burn far less than 10 % of a tile's cells.
    vmax = max(float(before.max()), float(after.max()), 1e-3)
    outside = np.ma.masked_where(~landscape.nodata, np.ones(landscape.shape))
    for ax, data, label in ((axes[1], before, "untreated"), (axes[2], after, "treated (breaks black)")):
        image = ax.imshow(data, cmap="YlOrRd", vmin=0, vmax=vmax, extent=_extent(landscape), interpolation="nearest")
        ax.imshow(outside, cmap=ListedColormap(["#d9d9d9"]), extent=_extent(landscape), interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("burn probability (share of the scoring fires)", fontsize=8)
        _map_axes(ax, landscape, f"burn probability, {label}", ylabel=False)
    _draw_breaks(axes[2], landscape, order > 0)
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)


def plot_q_evolution(episode: Episode, path: Path) -> Path:
    """Masked Q-value maps at the kept steps; invalid cells (non-burnable, treated) blank."""
    ls = episode.landscape
    steps = sorted(episode.q_maps)
    fig, axes = plt.subplots(1, len(steps), figsize=(4.6 * len(steps), 4.6), squeeze=False, layout="constrained")
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    for ax, step in zip(axes[0], steps):
        q, breaks, action = episode.q_maps[step]
        image = ax.imshow(np.ma.masked_invalid(q), cmap=cmap, extent=_extent(ls), interpolation="nearest")
        _draw_breaks(ax, ls, breaks)
        x, y = _cell_xy(ls, [action])
        ax.scatter(x, y, marker="o", s=90, facecolors="none", edgecolors="red", linewidths=1.8)
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("Q (predicted return)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        _map_axes(ax, ls, f"step {step} of {len(episode.breaks)} ({step / len(episode.breaks):.0%}): "
                          f"{int(breaks.sum())} breaks", ylabel=ax is axes[0][0])
    fig.suptitle(f"Masked Q-values of the greedy DQN during the episode, {episode.label}\n"
                 "white: not treatable, black: breaks so far, red circle: the cell it treats next", fontsize=11)
    return _save(fig, path)


# Tags of training_summary.png panels: (title, y label, tags, log y).
SUMMARY_PANELS: list[tuple[str, str, list[str], bool]] = [
    ("episode return", "return (share of burnable cells saved)", ["episode/return"], False),
    ("episode burned fraction (training fires)", "burned fraction", ["episode/burned_fraction",
                                                                    "episode/baseline_burned_fraction"], False),
    ("evaluation: reduction vs untreated (held-out tiles)", "1 − burned / untreated",
     ["eval/reduction_dqn"] + [f"eval/reduction_{b}" for b in BASELINES], False),
    ("learner loss", "TD loss", ["learner/loss"], True),
    ("rollout throughput (mean since the run started)", "env steps / s", ["rollout/env_steps_per_s"], False),
    ("faults (cumulative counts)", "count", ["faults/hangs", "faults/crashes", "faults/env_errors",
                                             "faults/restarts", "faults/lost_steps", "faults/learner_restarts"],
     False),
]


EPISODE_LABELS = {"return": "return", "burned_fraction": "with the breaks", "baseline_burned_fraction": "untreated"}


def read_scalars(tb_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tag -> (env steps, values) of every scalar in a TensorBoard folder ({} when none)."""
    if not tb_dir.is_dir():
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    events.Reload()
    out = {}
    for tag in events.Tags()["scalars"]:
        points = events.Scalars(tag)
        out[tag] = (np.array([p.step for p in points]), np.array([p.value for p in points]))
    return out


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window or window < 2:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def plot_training_summary(tb_dir: Path, path: Path) -> Path:
    """The run's TensorBoard scalars over env steps; a tag without data says so in its panel."""
    scalars = read_scalars(tb_dir)
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    for ax, (title, ylabel, tags, log) in zip(axes.flat, SUMMARY_PANELS):
        present = [t for t in tags if t in scalars and len(scalars[t][0])]
        missing = [t for t in tags if t not in present]
        ax.set_title(title, fontsize=10)
        if not present:
            ax.text(0.5, 0.5, "no data\n" + "\n".join(tags), ha="center", va="center", fontsize=9,
                    color="grey", transform=ax.transAxes)
            ax.set_xticks([]), ax.set_yticks([])
            continue
        for tag in present:
            steps, values = scalars[tag]
            name = tag.split("/", 1)[1]
            if tag.startswith("episode/"):
                window = max(len(values) // 20, 5)
                colour = "C0" if tag == tags[0] else "C1"
                ax.plot(steps, values, ".", ms=4, alpha=0.5, color=colour)
                ax.plot(steps, _smooth(values, window), color=colour,
                        label=f"{EPISODE_LABELS.get(name, name)} (dots: episodes, line: mean of {window})")
            elif tag.startswith("eval/"):
                ax.plot(steps, values, "o-", ms=4, lw=2.5 if name == "reduction_dqn" else 1,
                        label=POLICY_LABELS.get(name.removeprefix("reduction_"), name))
            elif tag.startswith("faults/"):
                ax.step(steps, values, where="post", label=name)
            else:
                ax.plot(steps, values, lw=1, label=name)
        if log and all((scalars[t][1] > 0).all() for t in present):
            ax.set_yscale("log")
        if title.startswith("faults"):  # counts: keep zero at the bottom, room above for the note
            top = max(float(scalars[t][1].max()) for t in present)
            ax.set_ylim(-0.05 * max(top, 1), 1.3 * max(top, 1))
        if missing:
            ax.text(0.02, 0.97, "no data: " + ", ".join(missing), transform=ax.transAxes, fontsize=7,
                    color="grey", va="top", ha="left", wrap=True)
        ax.set_xlabel("env steps", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if title.startswith("faults") else "best")
    source = tb_dir if scalars else f"{tb_dir} (no TensorBoard events found)"
    fig.suptitle(f"Training run: {source}", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def compare_policies(episode: Episode, progress: bool = True) -> dict[str, dict[str, Any]]:
    """The DQN's breaks and each baseline's, on the episode's landscape, budget and planning fires,
    scored on independent fires (``SCORING_SEED_BASE + tile``) like `firebreak.evaluate`.
    Returns name -> {breaks (H,W) bool, burn_probability (H,W), burned (fraction)}; "untreated" too."""
    ls, env = episode.landscape, episode.env
    n = len(env.simulator.scenarios)
    scoring = ScenarioSampler(SCORING_SEED_BASE + episode.tile, env.season).sample(ls, n)
    results = {}
    bar = tqdm(total=len(BASELINES) + 2, desc="comparing", unit="policy", disable=not progress, file=sys.stderr)

    def score(name, breaks):
        burned = simulate_many(ls, scoring, breaks).burned
        results[name] = {"breaks": np.zeros(ls.shape, bool) if breaks is None else breaks,
                         "burn_probability": burned.mean(axis=0),
                         "burned": float(burned.sum(axis=(1, 2)).mean() / max(int(ls.burnable.sum()), 1))}
        bar.update()

    score("untreated", None)
    dqn = np.zeros(ls.shape, bool)
    dqn.flat[episode.breaks] = True
    score("dqn", dqn)
    baseline_env = FuelBreakEnv([ls], budget=episode.budget, n_scenarios=n)
    for name, factory in BASELINES.items():
        bar.set_postfix(policy=name)
        run_episode(baseline_env, factory(episode.seed), episode.seed)
        score(name, baseline_env.simulator.breaks.copy())
    bar.close()
    return results


def plot_comparison(episode: Episode, results: dict[str, dict[str, Any]], path: Path) -> Path:
    """Burn probability under the scoring fires for untreated, DQN and every baseline."""
    ls = episode.landscape
    names = ["untreated", "dqn"] + list(BASELINES)
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.8 * rows), squeeze=False)
    untreated = results["untreated"]["burned"]
    vmax = _prob_max(*(r["burn_probability"] for r in results.values()))
    image = None
    for ax, name in zip(axes.flat, names):
        r = results[name]
        image = ax.imshow(r["burn_probability"], cmap="YlOrRd", vmin=0, vmax=vmax, extent=_extent(ls),
                          interpolation="nearest")
        if name == "untreated":
            title = f"untreated: burned {_pct(untreated)}"
        else:
            _draw_breaks(ax, ls, r["breaks"])
            reduction = 1 - r["burned"] / untreated if untreated > 0 else 0.0
            title = f"{POLICY_LABELS[name]}: burned {_pct(r['burned'])} ({reduction:.1%} less)"
        _map_axes(ax, ls, title)
        if name == "dqn":
            ax.title.set_fontweight("bold")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    bar = fig.colorbar(image, ax=axes, fraction=0.02, pad=0.02)
    bar.set_label("burn probability under the scoring fires", fontsize=9)
    n = len(episode.env.simulator.scenarios)
    fig.suptitle(f"Policies at the same budget ({len(episode.breaks)} breaks, black) on {episode.label}\n"
                 f"breaks planned on the episode's {n} fires, scored on {n} independent fires "
                 f"(seed SCORING_SEED_BASE+{episode.tile}, as firebreak.evaluate)", fontsize=11)
    return _save(fig, path)


def _frame(fig) -> "Image.Image":  # noqa: F821
    from PIL import Image

    fig.canvas.draw()
    return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]).quantize(colors=256)


def pick_fire(episode: Episode) -> int:
    """The episode fire whose burned area the breaks cut the most (ties: the largest fire)."""
    before = episode.untreated.burned.sum(axis=(1, 2))
    after = episode.env.simulator.burned.sum(axis=(1, 2))
    return int(np.lexsort((after, before - after))[-1])


def write_gif(episode: Episode, background: str, path: Path, *, max_break_frames: int = 24, fire_frames: int = 10,
              progress: bool = True) -> Path:
    """Breaks appearing in placement order (at most `max_break_frames` frames), then one fire's
    arrival times spreading through the treated landscape (`fire_frames` frames of arrival <= t).
    The background layer is drawn faintly, without a colour bar (slope when `background` is fuel,
    whose categories need their legend)."""
    ls, sim = episode.landscape, episode.env.simulator
    n = len(episode.breaks)
    counts = np.unique(np.linspace(1, n, min(n, max_break_frames)).round().astype(int))
    fire = pick_fire(episode)
    scenario = sim.scenarios[fire]
    arrival = sim.arrival[fire]
    reached = arrival[np.isfinite(arrival)]
    t_end = float(min(reached.max() if reached.size else scenario.duration_min, scenario.duration_min))
    times = np.linspace(t_end / fire_frames, t_end, fire_frames)
    frames, durations = [], []
    bar = tqdm(total=len(counts) + len(times), desc="episode.gif", unit="frame", disable=not progress,
               file=sys.stderr)
    extent = _extent(ls)

    faint = background if background != "fuel" else "slope"
    fig, ax = plt.subplots(figsize=(5.6, 4.6), dpi=100, layout="constrained")
    draw_background(ax, fig, ls, faint, colorbar=False, alpha=0.6)
    order = episode.order
    breaks_image = ax.imshow(np.ma.masked_invalid(order), cmap=BREAK_CMAP, vmin=1, vmax=max(n, 2), extent=extent,
                             interpolation="nearest")
    fig.colorbar(breaks_image, ax=ax, fraction=0.046, pad=0.04).set_label("placement order (step)", fontsize=8)
    for k in counts:
        breaks_image.set_data(np.ma.masked_where(~(order <= k), order))
        _map_axes(ax, ls, f"step {k}/{n} on {faint} (grey): burned {_pct(episode.burned_after_step[k - 1])}\n"
                          f"(untreated {_pct(episode.info['baseline_burned_fraction'])}, mean of "
                          f"{len(sim.scenarios)} fires)")
        frames.append(_frame(fig))
        durations.append(250)
        bar.update()
    durations[-1] = 1500
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.6, 4.6), dpi=100, layout="constrained")
    draw_background(ax, fig, ls, faint, colorbar=False, alpha=0.5)
    _draw_breaks(ax, ls, sim.breaks)
    km = ls.cell_size / 1000
    ax.contour((np.arange(ls.shape[1]) + 0.5) * km, (np.arange(ls.shape[0]) + 0.5) * km,
               episode.untreated.burned[fire].astype(float), levels=[0.5], colors="limegreen", linewidths=1.8, zorder=4,
               linestyles="--")
    ax.plot([], [], "--", color="limegreen", label="untreated final perimeter")
    ax.scatter((scenario.ignitions[:, 1] + 0.5) * km, (scenario.ignitions[:, 0] + 0.5) * km, marker="*", s=120,
               c="yellow", edgecolors="black", zorder=5, label="ignition")
    ax.legend(loc="lower right", fontsize=7)
    fire_image = ax.imshow(np.ma.masked_all(ls.shape), cmap="plasma", vmin=0, vmax=t_end, extent=extent,
                           interpolation="nearest")
    fig.colorbar(fire_image, ax=ax, fraction=0.046, pad=0.04).set_label("fire arrival time (min)", fontsize=8)
    treated_burned = int(sim.burned[fire].sum())
    untreated_burned = int(episode.untreated.burned[fire].sum())
    for t in times:
        fire_image.set_data(np.ma.masked_where(~(arrival <= t), arrival))
        _map_axes(ax, ls, f"fire {fire + 1}/{len(sim.scenarios)} with the breaks: t = {t:.0f} min\n"
                          f"wind {scenario.wind_speed_kmh:.0f} km/h from {scenario.wind_from_deg:.0f}°; "
                          f"{treated_burned} cells burn (untreated {untreated_burned})")
        frames.append(_frame(fig))
        durations.append(400)
        bar.update()
    durations[-1] = 2500
    plt.close(fig)
    bar.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return path
