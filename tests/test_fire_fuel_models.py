"""The fuel model table: its code set and its values against Behave's own table (pyrothermel)."""

import pytest

from firebreak.fire import FUEL_MODELS
from firebreak.landscape.fuel_codes import BURNABLE_CODES, KNOWN_CODES, NONBURNABLE_CODES


def test_codes_equal_landscape_codes():
    assert set(FUEL_MODELS) == set(KNOWN_CODES)
    assert {c for c, m in FUEL_MODELS.items() if m.burnable} == set(BURNABLE_CODES)
    assert all(not FUEL_MODELS[c].burnable for c in NONBURNABLE_CODES)


def test_table_matches_behave():
    pt = pytest.importorskip("pyrothermel")
    for code in sorted(BURNABLE_CODES):
        ours = FUEL_MODELS[code]
        theirs = pt.FuelModel.from_existing(code, units_preset="us_standard")
        loads = ("load_1h", "load_10h", "load_100h", "load_herb", "load_woody")
        their_loads = ("fuel_load_one_hour", "fuel_load_ten_hour", "fuel_load_hundred_hour",
                       "fuel_load_live_herbaceous", "fuel_load_live_woody")
        for a, b in zip(loads, their_loads):
            assert getattr(ours, a) == pytest.approx(getattr(theirs, b), rel=1e-6, abs=1e-9), (code, a)
        assert ours.sav_1h == theirs.savr_one_hour
        if ours.load_herb:
            assert ours.sav_herb == theirs.savr_live_herbaceous
        if ours.load_woody:
            assert ours.sav_woody == theirs.savr_live_woody
        assert ours.depth == pytest.approx(theirs.fuel_bed_depth)
        assert ours.mx_dead == pytest.approx(theirs.moisture_of_extinction_dead)
        assert (ours.heat_dead, ours.heat_live) == (theirs.heat_of_combustion_dead, theirs.heat_of_combustion_live)
        # Behave flags every S&B model dynamic; only those with herbaceous load are affected.
        if ours.load_herb:
            assert ours.dynamic == theirs.is_dynamic
