"""Crown fire: initiation, spread and the final fire behaviour of a cell, two methods.

Fire type codes follow FlamMap: 0 unburned (no surface fire), 1 surface, 2 passive crown
(torching), 3 active crown. Both methods start crown fire as Van Wagner (1977): a surface fire
whose Byram intensity reaches I0 = (0.010 CBH (460 + 25.9 FMC))^1.5 kW/m (CBH m, at least
0.1 m; FMC foliar moisture in %, at least 30 %, as Behave bounds them) ignites the crowns.

``"scott_reinhardt"`` (the default; Scott & Reinhardt 2001, RMRS-RP-29, as Behave's crown
module and FlamMap compute it):

- Active crown spread rate R_active = 3.34 R10 (Rothermel 1991): R10 is the head rate of fuel
  model 10 under the cell's fuel moistures with midflame wind 0.4 x the 20 ft wind, combined
  with the slope as for surface fire. FlamMap (FARSITE's crown code) evaluates fuel model 10 on
  the cell's slope; Behave evaluates it on level ground. The kernels take the crown fuel's
  slope as an argument: the fire model passes the cell slope (FlamMap), the tests pass 0 to
  reproduce Behave's values.
- Active when initiated and R_active >= R'active = 3 / CBD m/min (Van Wagner's critical mass
  flow, 0.05 kg/m2/s); initiated but slower is passive (torching). When fuel model 10 is too
  wet to spread (R_active = 0) an initiated fire torches without crown fraction burned and keeps
  the surface rate and heat (FARSITE's guard; Behave would slow it toward 0).
- Crowning index O'active: the 20 ft wind at which R_active = R'active (S&R eq. 20, with the
  crown fuel's slope factor). Crown fraction burned CFB = (R_s - R'init) / (R'SA - R'init) in
  [0, 1], R_s the surface rate, R'init = 60 I0 / H_s the surface rate that initiates crowning
  (H_s surface heat per unit area), R'SA the surface rate at the 20 ft wind O'active.
- Passive: rate R_s + CFB (R_active - R_s), heat per unit area H_s + CFB H_c; active: rate
  R_active, heat H_s + H_c, with the canopy fuel heat H_c = CBD (CH - CBH) x 8000 Btu/lb (as
  Behave). Intensity = heat x rate / 60; crown flame length is Thomas (1963), 0.2 I^(2/3) ft
  (I in Btu/ft/s), for passive and active crown fire.

``"cruz"`` (the previous default, kept as an option; pyretechnics' choice):

- Active rate CROS = 11.02 U10^0.90 CBD^0.19 exp(-0.17 EFFM) m/min (Cruz, Alexander &
  Wakimoto 2005), U10 the 10 m open wind (km/h), EFFM the 1 h moisture (%); active when
  initiated and CROS >= 3 / CBD, else passive.
- A passive crown fire keeps the surface rate, intensity and flame length; an active one
  spreads at max(surface rate, CROS) with the surface heat plus the canopy fuel at 18 000
  kJ/kg, and Thomas' flame length.

Spread direction and shape: a passive fire keeps the surface head direction and ellipse; an
active crown fire moves in the crown fuel's head direction (Scott & Reinhardt; the surface head
direction for Cruz) with the larger of the surface length-to-width ratio and the crown fire one,
1 + 0.125 U20 (mph) (Rothermel 1991, as Behave).
"""

from __future__ import annotations

import math

from numba import njit

from . import rothermel as rt

UNBURNED, SURFACE, PASSIVE, ACTIVE = 0, 1, 2, 3
SCOTT_REINHARDT, CRUZ = 0, 1
#: Crown fire methods by name, as the public functions take them.
METHODS = {"scott_reinhardt": SCOTT_REINHARDT, "cruz": CRUZ}
#: Fuel model 10 (Anderson 1982), Rothermel's (1991) crown fuel.
CROWN_FUEL_MODEL = 10
#: Wind adjustment factor on crown fuel (Rothermel 1991).
CROWN_WAF = 0.4
CANOPY_HEAT_BTU_LB = 8000.0  # Scott & Reinhardt, as Behave
CANOPY_HEAT_CRUZ_KJ_KG = 18000.0
KG_M3_PER_LB_FT3 = 16.018463373960138
BTU_FT2_TO_KJ_M2 = 1.05505585262 / (rt.M_PER_FT * rt.M_PER_FT)


def method_code(name: str) -> int:
    """The kernel code of a crown fire method name; a clear error for an unknown one."""
    if name not in METHODS:
        raise ValueError(f"crown_method {name!r} is not one of {sorted(METHODS)}: use 'scott_reinhardt' "
                         "(FlamMap's default, Scott & Reinhardt 2001) or 'cruz' (Cruz et al. 2005)")
    return METHODS[name]


@njit(cache=True)
def initiation_intensity(canopy_base_height_m, foliar_moisture):
    """Van Wagner (1977) critical surface fireline intensity for crowning, kW/m (CBH at least
    0.1 m, foliar moisture at least 30 %, as Behave)."""
    cbh = max(canopy_base_height_m, 0.1)
    fmc = max(100.0 * foliar_moisture, 30.0)
    return (0.010 * cbh * (460.0 + 25.9 * fmc)) ** 1.5


@njit(cache=True)
def active_spread_rate(wind_10m_kmh, canopy_bulk_density, dead_1h_moisture):
    """Cruz et al. (2005) active crown fire spread rate, m/min."""
    if canopy_bulk_density <= 0.0:
        return 0.0
    return 11.02 * wind_10m_kmh**0.90 * canopy_bulk_density**0.19 * math.exp(-0.17 * 100.0 * dead_1h_moisture)


@njit(cache=True)
def crown_length_to_width(wind_20ft_mph):
    """Rothermel (1991) crown fire length-to-width ratio."""
    return 1.0 + 0.125 * wind_20ft_mph


@njit(cache=True)
def thomas_flame_length(intensity_btu_ft_s):
    """Thomas (1963) crown fire flame length, ft."""
    return 0.2 * intensity_btu_ft_s ** (2.0 / 3.0) if intensity_btu_ft_s > 0.0 else 0.0


@njit(cache=True)
def crowning_index(fb10, canopy_bulk_density, crown_slope):
    """Scott & Reinhardt's O'active: the 20 ft wind (ft/min) at which fuel model 10 (fuel bed
    `fb10`) spreads a crown fire at R'active = 3 / CBD m/min on a slope `crown_slope`
    (rise/run). 0 when the slope alone is enough; inf without canopy fuel or when fuel model 10
    is too wet to burn."""
    if canopy_bulk_density <= 0.0 or fb10[rt.FB_R0] <= 0.0:
        return math.inf
    r10 = 3.0 / canopy_bulk_density / rt.M_PER_FT / 3.34  # R'active / 3.34, ft/min
    phi_s = fb10[rt.FB_PHI_S] * crown_slope * crown_slope
    a = (r10 / fb10[rt.FB_R0] - 1.0 - phi_s) / fb10[rt.FB_PHI_W]
    if a <= 0.0:
        return 0.0
    return a ** (1.0 / fb10[rt.FB_WIND_B]) / CROWN_WAF


@njit(cache=True)
def scott_reinhardt(fb, fb10, surface_rate, surface_hpa, waf, wind_20ft, wind_from_deg, slope, aspect_deg,
                    crown_slope, canopy_height, canopy_base_height, canopy_bulk_density, foliar_moisture):
    """Scott & Reinhardt (2001) crown fire of one cell whose surface fire (fuel bed `fb`, head
    rate `surface_rate` ft/min, heat per unit area `surface_hpa` Btu/ft2, midflame wind
    `waf` x `wind_20ft` ft/min) is known, US units.

    Returns (fire type, rate ft/min, heat per unit area Btu/ft2, crown fraction burned, crown
    head direction deg, active crown rate ft/min); for a surface fire the rate and heat are the
    surface ones and the crown terms 0 (not computed).
    """
    surface_intensity = surface_rate * surface_hpa / 60.0  # Btu/ft/s
    i0 = initiation_intensity(canopy_base_height, foliar_moisture) / rt.KW_M_PER_BTU_FT_S
    if surface_intensity < i0:
        return SURFACE, surface_rate, surface_hpa, 0.0, 0.0, 0.0
    r10, crown_direction, _, _, _ = rt.head_fire(fb10, CROWN_WAF * wind_20ft, wind_from_deg, crown_slope, aspect_deg)
    active_rate = 3.34 * r10
    if active_rate <= 0.0:  # the crown fuel is too wet to carry fire: torching only, as FlamMap
        return PASSIVE, surface_rate, surface_hpa, 0.0, crown_direction, 0.0
    canopy_hpa = (canopy_bulk_density / KG_M3_PER_LB_FT3 * max(canopy_height - canopy_base_height, 0.0)
                  / rt.M_PER_FT * CANOPY_HEAT_BTU_LB)
    if active_rate >= 3.0 / canopy_bulk_density / rt.M_PER_FT:
        return ACTIVE, active_rate, surface_hpa + canopy_hpa, 1.0, crown_direction, active_rate
    o_active = crowning_index(fb10, canopy_bulk_density, crown_slope)
    r_sa = rt.head_fire(fb, waf * o_active, wind_from_deg, slope, aspect_deg)[0]
    r_init = 60.0 * i0 / surface_hpa
    denominator = r_sa - r_init
    cfb = (surface_rate - r_init) / denominator if denominator > 1e-7 else 0.0
    cfb = min(max(cfb, 0.0), 1.0)
    rate = surface_rate + cfb * (active_rate - surface_rate)
    return PASSIVE, rate, surface_hpa + cfb * canopy_hpa, cfb, crown_direction, active_rate


@njit(cache=True)
def cruz(surface_rate, surface_intensity_kw_m, wind_10m_kmh, canopy_base_height, canopy_bulk_density,
         foliar_moisture, dead_1h):
    """Fire type and active rate (m/min) of one cell by the Cruz et al. (2005) method."""
    crown_rate = active_spread_rate(wind_10m_kmh, canopy_bulk_density, dead_1h)
    if surface_intensity_kw_m < initiation_intensity(canopy_base_height, foliar_moisture):
        return SURFACE, crown_rate
    if crown_rate >= 3.0 / canopy_bulk_density:
        return ACTIVE, crown_rate
    return PASSIVE, crown_rate
