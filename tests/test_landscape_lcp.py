"""FARSITE / FlamMap .lcp landscapes: built from the GeoTIFF fixtures with GDAL's LCP writer
(tests/data/make_fixtures.py), loaded back and compared with the GeoTIFF load."""

import importlib.util
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from firebreak.landscape import LAYERS, LandscapeError, load_landfire, load_landscapes, load_lcp

DATA = Path(__file__).parent / "data"
CROP = DATA / "landfire_crop"
_spec = importlib.util.spec_from_file_location("make_fixtures", DATA / "make_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

# Header offsets of the unit codes (int16), GDAL's lcpdataset.cpp.
SLOPE_UNIT_OFFSET, FUEL_OPTION_OFFSET = 4226, 4230


def _quiet(load, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nodata")
        return load(*args, **kwargs)


@pytest.fixture(scope="module")
def geotiffs():
    return _quiet(load_landfire, CROP)


@pytest.mark.parametrize("slope_unit", ["DEGREES", "PERCENT"])
def test_lcp_loads_to_the_geotiff_layers(tmp_path, geotiffs, slope_unit):
    path = fixtures.write_lcp(CROP, tmp_path / f"crop_{slope_unit.lower()}.lcp", slope_unit)
    lcp = _quiet(load_landfire, path)  # load_landfire dispatches on the .lcp suffix
    assert lcp.shape == geotiffs.shape and lcp.cell_size == 30.0
    np.testing.assert_array_equal(lcp.nodata, geotiffs.nodata)
    assert lcp.nodata.sum() == 844
    for name in LAYERS:
        if name != "slope":
            np.testing.assert_array_equal(getattr(lcp, name), getattr(geotiffs, name), err_msg=name)
    if slope_unit == "PERCENT":
        np.testing.assert_array_equal(lcp.slope, geotiffs.slope)
    else:
        # An .lcp in degrees holds whole degrees: within half a degree of the percent slope's angle.
        angle = lambda s: np.degrees(np.arctan(s.astype(np.float64)))  # noqa: E731
        assert np.abs(angle(lcp.slope) - angle(geotiffs.slope)).max() <= 0.5 + 1e-4
        assert not np.array_equal(lcp.slope, geotiffs.slope), "degrees were rounded: not bit-equal"
    # Same place on Earth: the CRS from the .prj beside the file, the transform from the header.
    assert lcp.metadata["crs"] == geotiffs.metadata["crs"] == "EPSG:5070"
    assert lcp.metadata["transform"] == geotiffs.metadata["transform"]
    assert lcp.metadata["nodata_value"] == "-9999.0"
    assert lcp.metadata["unit.slope"] == slope_unit.lower()
    assert _quiet(load_landscapes, path)[0].metadata["source"] == str(path)


def test_lcp_units_other_than_landfires(tmp_path, geotiffs):
    bands, profile = fixtures.landfire_bands(CROP)
    outside = bands["F40"] == fixtures.LCP_NODATA
    keep = lambda values: np.where(outside, fixtures.LCP_NODATA, np.rint(values)).astype(np.int16)  # noqa: E731
    # Re-encode from the GeoTIFF layers: feet, GRASS degrees, cover classes, feet, metres, lb/ft3 x 1000.
    ls = geotiffs
    aspect = np.where(bands["Asp"] == -1, 0, (450 - ls.aspect) % 360)
    aspect = np.where((aspect == 0) & (bands["Asp"] != -1), 360, aspect)  # GRASS: 0 is flat, east is 360
    percent = ls.canopy_cover * 100
    classes = np.digitize(percent, [0.5, 20.5, 50.5, 80.5])  # 0; 1-20; 21-50; 51-80; 81-100 %
    encoded = [keep(ls.elevation / 0.3048), keep(bands["SlpP"]), keep(aspect), bands["F40"], keep(classes),
               keep(ls.canopy_height / 0.3048), keep(ls.canopy_base_height), keep(ls.canopy_bulk_density / 16.01846 * 1000)]
    path = fixtures.write_lcp_bands(tmp_path / "units.lcp", encoded, profile, ELEVATION_UNIT="FEET", SLOPE_UNIT="PERCENT",
                                    ASPECT_UNIT="GRASS_DEGREES", CANOPY_COV_UNIT="CATEGORIES", CANOPY_HT_UNIT="FEET",
                                    CBH_UNIT="METERS", CBD_UNIT="POUND_PER_CUBIC_FOOT_X_1000")
    lcp = _quiet(load_lcp, path)
    inside = ~lcp.nodata
    np.testing.assert_allclose(lcp.elevation[inside], ls.elevation[inside], atol=0.5 * 0.3048 + 1e-3)
    np.testing.assert_allclose(lcp.aspect[inside], ls.aspect[inside], atol=0.5 + 1e-3)
    # FARSITE's cover classes 1-4 stand for 10, 30, 60 and 75 %.
    np.testing.assert_allclose(lcp.canopy_cover[inside], np.array([0, 0.1, 0.3, 0.6, 0.75])[classes[inside]], atol=1e-6)
    np.testing.assert_allclose(lcp.canopy_height[inside], ls.canopy_height[inside], atol=0.5 * 0.3048 + 1e-3)
    np.testing.assert_allclose(lcp.canopy_base_height[inside], ls.canopy_base_height[inside], atol=0.5 + 1e-3)
    np.testing.assert_allclose(lcp.canopy_bulk_density[inside], ls.canopy_bulk_density[inside],
                               atol=0.5 * 16.01846 / 1000 + 1e-6)
    assert lcp.metadata["unit.canopy_cover"] == "categories 0-4" and lcp.metadata["unit.elevation"] == "ft"


def _patch_header(path: Path, offset: int, code: int) -> Path:
    data = bytearray(path.read_bytes())
    data[offset:offset + 2] = struct.pack("<h", code)
    path.write_bytes(bytes(data))
    return path


def test_unknown_unit_code(tmp_path):
    path = _patch_header(fixtures.write_lcp(CROP, tmp_path / "bad.lcp"), SLOPE_UNIT_OFFSET, 7)
    with pytest.raises(LandscapeError, match=r"bad\.lcp: band 2 \(slope\): unknown SLOPE unit code 7 in the header; "
                                             r"known: 0 = degrees, 1 = percent"):
        _quiet(load_lcp, path)


def test_fuel_conversion_file_refused(tmp_path):
    path = _patch_header(fixtures.write_lcp(CROP, tmp_path / "cnv.lcp"), FUEL_OPTION_OFFSET, 2)
    with pytest.raises(LandscapeError, match=r"band 4 \(fuel_model\): unknown FUEL_MODEL unit code 2.*conversion file"):
        _quiet(load_lcp, path)


def test_lcp_without_crown_fuels(tmp_path):
    bands, profile = fixtures.landfire_bands(CROP)
    path = fixtures.write_lcp_bands(tmp_path / "surface.lcp", [bands[t] for t in fixtures.LCP_BANDS[:5]], profile)
    with pytest.raises(LandscapeError, match=r"surface\.lcp: no band for layer\(s\) \['canopy_height', "
                                             r"'canopy_base_height', 'canopy_bulk_density'\] \(it has no crown fuels\)"):
        _quiet(load_lcp, path)


def test_lcp_values_that_do_not_fit_the_header(tmp_path):
    bands, profile = fixtures.landfire_bands(CROP)
    # Canopy height stored as m x 10 but the header says metres: heights of 100+ m.
    path = fixtures.write_lcp_bands(tmp_path / "ch.lcp", [bands[t] for t in fixtures.LCP_BANDS], profile,
                                    CANOPY_HT_UNIT="METERS")
    with pytest.raises(LandscapeError, match=r"ch\.lcp band 6: layer 'canopy_height'.*outside \[0, 120\].*"
                                             r"header's units: .*canopy_height m,"):
        _quiet(load_lcp, path)


def test_lcp_nodata_policy_and_foreign_files(tmp_path):
    path = fixtures.write_lcp(CROP, tmp_path / "crop.lcp")
    with pytest.raises(LandscapeError, match=r"844 nodata cell\(s\)"):
        load_lcp(path, nodata="error")
    with pytest.warns(UserWarning, match="844 nodata cell"):
        load_lcp(path)
    fake = tmp_path / "fake.lcp"
    fake.write_bytes(b"not a landscape")
    with pytest.raises(LandscapeError, match=r"fake\.lcp: cannot read it as a FARSITE \.lcp landscape"):
        load_lcp(fake)
