"""pyretechnics side of `bench_fire.py` (run by it, in pyretechnics' own environment).

`python _pyretechnics_peer.py FIRES.npz REPEATS` burns each fire of FIRES.npz (written by
`bench_fire.peer_inputs`: north-up layers, ignition cell, weather, duration) with pyretechnics'
level-set spread and prints one JSON line: its version, mean burned cells, us per fire and per
burned cell (best of REPEATS per fire, the spread call alone). pyretechnics' row 0 is the south
edge, so every layer is flipped north-south and the ignition row mirrored; its "upwind_direction"
is the direction the wind blows from, as ours.
"""

import json
import math
import sys
import time
from importlib.metadata import version

import numpy as np
import pyretechnics.eulerian_level_set as els
from pyretechnics.space_time_cube import SpaceTimeCube

LAYERS = ("fuel_model", "slope", "aspect", "canopy_cover", "canopy_height", "canopy_base_height",
          "canopy_bulk_density")


def main(path: str, repeats: int) -> None:
    data = np.load(path)
    layers, fires, cell = data["layers"], data["fires"], float(data["cell_size"])
    burned_total = seconds_total = 0.0
    for t, row, col, wind, wind_from, m1, m10, m100, herb, woody, foliar, duration in fires:
        grid = layers[int(t)][:, ::-1, :]  # north-up -> south-up
        rows, cols = grid.shape[1:]
        bands = int(math.ceil(duration / 60.0)) + 1
        shape = (bands, rows, cols)

        def constant(value):
            return SpaceTimeCube(shape, np.full((bands, 1, 1), value, np.float32))

        cubes = {name: SpaceTimeCube(shape, np.ascontiguousarray(grid[k], np.float32))
                 for k, name in enumerate(LAYERS)}
        cubes.update({
            "wind_speed_10m": constant(wind), "upwind_direction": constant(wind_from),
            "fuel_moisture_dead_1hr": constant(m1), "fuel_moisture_dead_10hr": constant(m10),
            "fuel_moisture_dead_100hr": constant(m100), "fuel_moisture_live_herbaceous": constant(herb),
            "fuel_moisture_live_woody": constant(woody), "foliar_moisture": constant(foliar),
            "temperature": constant(30.0),
        })
        best = math.inf
        for _ in range(repeats):
            state = els.SpreadState(shape).ignite_cell((rows - 1 - int(row), int(col)))
            start = time.perf_counter()
            els.spread_fire_with_phi_field(cubes, state, (60, cell, cell), 0.0, float(duration))
            best = min(best, time.perf_counter() - start)
        burned = np.count_nonzero(state.get_full_matrices(layers=["fire_type"])["fire_type"])
        burned_total += burned
        seconds_total += best
    n = len(fires)
    print(json.dumps({"version": version("pyretechnics"), "burned": burned_total / n,
                      "us_per_fire": seconds_total / n * 1e6, "us_per_burned": seconds_total / burned_total * 1e6}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
