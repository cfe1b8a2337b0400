"""Crown fire: initiation (Van Wagner 1977), active spread (Cruz et al. 2005), fire type.

Fire type codes follow FlamMap: 0 unburned (no surface fire), 1 surface, 2 passive crown
(torching), 3 active crown.

- Initiation: a surface fire with Byram intensity >= I0 = (0.010 * CBH * (460 + 25.9 FMC))^1.5
  kW/m (CBH m, foliar moisture FMC in %) ignites the crowns (Van Wagner 1977).
- Active spread rate (Cruz, Alexander & Wakimoto 2005, Eq. for active crown fires):
  CROS = 11.02 * U10^0.90 * CBD^0.19 * exp(-0.17 * EFFM) m/min, U10 the 10 m open wind (km/h),
  CBD kg/m3, EFFM the fine dead fuel moisture (%), here the 1-h moisture.
- Classification: initiated and CROS >= 3 / CBD (Van Wagner's critical mass flow rate,
  0.05 kg/m2/s -> 3/CBD m/min) is active, otherwise passive.

How a crowning cell spreads (our choice, as FlamMap does with the Cruz option): a passive
crown fire spreads at the surface rate (isolated torching does not carry the fire); an active
crown fire spreads at max(surface rate, CROS) in the surface head direction, with the crown
fire length-to-width ratio 1 + 0.125 * U20 (mph) of Rothermel (1991) used by Behave.
Active crown fireline intensity adds the canopy fuel, CBD * (CH - CBH) kg/m2 at 18 000 kJ/kg,
to the surface heat per unit area (Scott & Reinhardt 2001); crown flame length follows
Thomas (1963) as Behave, 0.2 * I^(2/3) ft with I in Btu/ft/s.
"""

from __future__ import annotations

import math

from numba import njit

UNBURNED, SURFACE, PASSIVE, ACTIVE = 0, 1, 2, 3
CANOPY_HEAT_CONTENT = 18000.0  # kJ/kg


@njit(cache=True)
def initiation_intensity(canopy_base_height_m, foliar_moisture):
    """Van Wagner (1977) critical surface fireline intensity for crowning, kW/m."""
    return (0.010 * canopy_base_height_m * (460.0 + 25.9 * 100.0 * foliar_moisture)) ** 1.5


@njit(cache=True)
def active_spread_rate(wind_10m_kmh, canopy_bulk_density, dead_1h_moisture):
    """Cruz et al. (2005) active crown fire spread rate, m/min."""
    if canopy_bulk_density <= 0.0:
        return 0.0
    return 11.02 * wind_10m_kmh**0.90 * canopy_bulk_density**0.19 * math.exp(-0.17 * 100.0 * dead_1h_moisture)


@njit(cache=True)
def crown_fire_type(surface_rate, surface_intensity_kw_m, canopy_cover, canopy_base_height_m,
                    canopy_bulk_density, foliar_moisture, crown_rate):
    """FlamMap fire type code for a cell (see module docstring)."""
    if surface_rate <= 0.0:
        return UNBURNED
    if canopy_cover <= 0.0 or canopy_bulk_density <= 0.0:
        return SURFACE
    if surface_intensity_kw_m < initiation_intensity(canopy_base_height_m, foliar_moisture):
        return SURFACE
    if crown_rate >= 3.0 / canopy_bulk_density:
        return ACTIVE
    return PASSIVE


@njit(cache=True)
def crown_length_to_width(wind_20ft_mph):
    """Rothermel (1991) crown fire length-to-width ratio."""
    return 1.0 + 0.125 * wind_20ft_mph
