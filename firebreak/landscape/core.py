"""`Landscape`: the named raster layers a fire spreads over, validated and immutable.

Grids are north-up like GeoTIFFs: row 0 is the north edge, rows grow southward and
columns eastward. Units (LANDFIRE / Behave conventions, see DESIGN.md):

=====================  ===========================================================
layer                  unit
=====================  ===========================================================
fuel_model             int16 fuel code (Scott & Burgan 40, Anderson 13, 91-99)
slope                  rise/run (0.5 = 50 %)
aspect                 degrees clockwise from north the slope faces, [0, 360)
elevation              m
canopy_cover           fraction, 0-1
canopy_height          m
canopy_base_height     m
canopy_bulk_density    kg/m3
=====================  ===========================================================

Arrays are read-only: writing breaks goes through :meth:`Landscape.with_breaks`, which
returns a new landscape (the old tool corrupted its shared fuel layer by writing in place).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .fuel_codes import BARE_GROUND, KNOWN_CODES, is_burnable

FLOAT_LAYERS: tuple[str, ...] = (
    "slope",
    "aspect",
    "elevation",
    "canopy_cover",
    "canopy_height",
    "canopy_base_height",
    "canopy_bulk_density",
)
LAYERS: tuple[str, ...] = ("fuel_model",) + FLOAT_LAYERS

# Plausible physical ranges (inclusive); values outside are encoding mistakes
# (percent read as a fraction, m x 10 read as m, ...), never silently clipped.
_RANGES: dict[str, tuple[float, float, str]] = {
    "slope": (0.0, 20.0, "rise/run (LANDFIRE SlpP percent / 100; degrees -> tan)"),
    "aspect": (0.0, 360.0, "degrees clockwise from north in [0, 360)"),
    "elevation": (-500.0, 9000.0, "metres"),
    "canopy_cover": (0.0, 1.0, "a fraction 0-1 (LANDFIRE CC percent / 100)"),
    "canopy_height": (0.0, 120.0, "metres (LANDFIRE CH is m x 10: divide by 10)"),
    "canopy_base_height": (0.0, 120.0, "metres (LANDFIRE CBH is m x 10: divide by 10)"),
    "canopy_bulk_density": (0.0, 5.0, "kg/m3 (LANDFIRE CBD is kg/m3 x 100: divide by 100)"),
}


class LandscapeError(ValueError):
    """Bad landscape input: the message names the file, the layer, the cells and the fix."""


def _first_position(bad: np.ndarray) -> tuple[int, int]:
    row, col = np.argwhere(bad)[0]
    return int(row), int(col)


def _fail(source: str, layer: str, bad: np.ndarray, values: np.ndarray, problem: str, fix: str):
    row, col = _first_position(bad)
    raise LandscapeError(
        f"{source}: layer '{layer}': {int(bad.sum())} cell(s) {problem} "
        f"(first at row {row}, col {col}: {values[row, col]!r}). {fix}"
    )


@dataclass(frozen=True, eq=False)
class Landscape:
    """A validated, immutable raster landscape. See the module docstring for units."""

    fuel_model: np.ndarray
    slope: np.ndarray
    aspect: np.ndarray
    elevation: np.ndarray
    canopy_cover: np.ndarray
    canopy_height: np.ndarray
    canopy_base_height: np.ndarray
    canopy_bulk_density: np.ndarray
    cell_size: float = 30.0
    #: True where the source raster had no data; such cells are non-burnable.
    nodata: np.ndarray | None = None
    #: Free-form provenance, JSON-serialisable strings: source, credit, crs, transform (see
    #: `format_transform`), nodata_value (the source's declared nodata), window, file.<layer>.
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        source = self.metadata.get("source", "<in-memory landscape>")
        set_ = object.__setattr__
        set_(self, "fuel_model", _frozen(self.fuel_model, np.int16, source, "fuel_model"))
        for name in FLOAT_LAYERS:
            set_(self, name, _frozen(getattr(self, name), np.float32, source, name))
        nodata = np.zeros(self.shape, bool) if self.nodata is None else self.nodata
        set_(self, "nodata", _frozen(nodata, bool, source, "nodata"))
        set_(self, "metadata", dict(self.metadata))
        set_(self, "cell_size", float(self.cell_size))
        validate(self, source)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return tuple(self.fuel_model.shape)  # type: ignore[return-value]

    @property
    def burnable(self) -> np.ndarray:
        """Boolean mask of cells with a burnable fuel model."""
        return is_burnable(self.fuel_model)

    def layers(self) -> dict[str, np.ndarray]:
        """The named layers in `LAYERS` order (read-only views)."""
        return {name: getattr(self, name) for name in LAYERS}

    def replace(self, **changes) -> "Landscape":
        """A new, validated landscape with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def with_breaks(self, breaks: np.ndarray) -> "Landscape":
        """A new landscape in which the cells of the boolean mask `breaks` are bare ground
        (fuel NB9, no canopy). The original is untouched."""
        breaks = np.asarray(breaks, bool)
        if breaks.shape != self.shape:
            raise LandscapeError(f"break mask has shape {breaks.shape}, landscape has {self.shape}")
        fuel = np.where(breaks, np.int16(BARE_GROUND), self.fuel_model)
        canopy = {
            name: np.where(breaks, np.float32(0), getattr(self, name))
            for name in ("canopy_cover", "canopy_height", "canopy_base_height", "canopy_bulk_density")
        }
        return self.replace(fuel_model=fuel, **canopy)

    def window(self, row: int, col: int, rows: int, cols: int) -> "Landscape":
        """The sub-landscape [row:row+rows, col:col+cols]; its metadata records the window in
        the original grid and its own georeferencing (the transform moved to its corner)."""
        sl = (slice(row, row + rows), slice(col, col + cols))
        layers = {name: getattr(self, name)[sl] for name in LAYERS}
        meta = dict(self.metadata)
        parent_row, parent_col = (int(v) for v in meta.get("window", "0,0,0,0").split(",")[:2])
        meta["window"] = f"{parent_row + row},{parent_col + col},{rows},{cols}"
        if meta.get("transform"):
            a, b, c, d, e, f = (float(v) for v in meta["transform"].split(","))
            meta["transform"] = format_transform((a, b, c + a * col + b * row, d, e, f + d * col + e * row))
        return Landscape(**layers, cell_size=self.cell_size, nodata=self.nodata[sl], metadata=meta)

    def summary(self) -> str:
        """A human-readable multi-line summary: shape, cell size, fuels, burnable, nodata."""
        rows, cols = self.shape
        codes, counts = np.unique(self.fuel_model[~self.nodata], return_counts=True)
        hist = ", ".join(f"{c}: {k}" for c, k in zip(codes.tolist(), counts.tolist()))
        lines = [
            f"source:        {self.metadata.get('source', '<in-memory>')}",
            f"shape:         {rows} rows x {cols} cols, cell size {self.cell_size:g} m "
            f"({rows * cols * self.cell_size**2 / 1e6:.2f} km2)",
            f"burnable:      {self.burnable.mean():.1%} of cells",
            f"nodata:        {int(self.nodata.sum())} cells ({self.nodata.mean():.1%})",
            f"fuel models:   {hist}",
        ]
        for name in FLOAT_LAYERS:
            values = getattr(self, name)[~self.nodata]
            if values.size:
                lines.append(
                    f"{name + ':':<22s} min {values.min():.3g}  mean {values.mean():.3g}  max {values.max():.3g}"
                )
        if "credit" in self.metadata:
            lines.append(f"credit:        {self.metadata['credit']}")
        return "\n".join(lines)


def format_transform(coefficients) -> str:
    """The affine coefficients (a, b, c, d, e, f) as metadata text, exact (repr of each float):
    x = a col + b row + c, y = d col + e row + f, in the CRS's units, at the cells' corners."""
    return ",".join(repr(float(v)) for v in tuple(coefficients)[:6])


def _frozen(array, dtype, source: str, layer: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise LandscapeError(f"{source}: layer '{layer}' has {array.ndim} dimensions, expected a 2-D raster")
    if dtype is np.int16 and np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            _fail(source, layer, bad, array, "are not integer fuel codes",
                  "Fuel models must be integer codes (F40 101-204, F13 1-13, 91-99).")
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def _file(landscape: Landscape, source: str, layer: str) -> str:
    """The file a layer came from, when the loader recorded it, else the landscape's source."""
    return landscape.metadata.get(f"file.{layer}", source)


def validate(landscape: Landscape, source: str) -> None:
    """Raise `LandscapeError` on the first problem: shapes, NaN/inf, unknown fuel codes,
    values out of physical range. Nodata cells are exempt (they are non-burnable)."""
    shape = landscape.fuel_model.shape
    for name in FLOAT_LAYERS + ("nodata",):
        other = getattr(landscape, name).shape
        if other != shape:
            raise LandscapeError(
                f"{source}: layer '{name}' has shape {other} but 'fuel_model' has {shape}. "
                "All layers must share one grid: resample or clip them to the same extent."
            )
    if landscape.cell_size <= 0 or not np.isfinite(landscape.cell_size):
        raise LandscapeError(f"{source}: cell_size {landscape.cell_size!r} must be a positive number of metres")
    valid = ~landscape.nodata
    fuel = landscape.fuel_model
    unknown = valid & ~np.isin(fuel, np.fromiter(KNOWN_CODES, dtype=np.int16))
    if unknown.any():
        codes = sorted(set(np.unique(fuel[unknown]).tolist()))
        _fail(_file(landscape, source, "fuel_model"), "fuel_model", unknown, fuel, f"have unknown fuel codes {codes[:10]}",
              "Use Scott & Burgan 40 codes (101-204), Anderson 13 (1-13) or non-burnable 91-99; "
              "if these cells are nodata, declare the raster's nodata value.")
    for name in FLOAT_LAYERS:
        values = getattr(landscape, name)
        bad = valid & ~np.isfinite(values)
        if bad.any():
            _fail(_file(landscape, source, name), name, bad, values, "are NaN or infinite",
                  "Fill the gaps in the source raster or mark them as its nodata value.")
        low, high, unit = _RANGES[name]
        bad = valid & ((values < low) | (values > high) | ((values == high) & (name == "aspect")))
        if bad.any():
            _fail(_file(landscape, source, name), name, bad, values, f"are outside [{low:g}, {high:g}]",
                  f"Expected {unit}.")
