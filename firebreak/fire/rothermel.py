"""Rothermel (1972) surface fire spread with Albini (1976) extensions, computed as Behave does.

The kernels follow BehavePlus / Behave's C++ core (``firelab/behave``, the code
``pyrothermel`` wraps) step by step, in its internal US units (lb/ft2, ft, ft/min,
Btu/lb, Btu/ft2/min); the public functions convert to the project's units at the edges:
spread rate m/min, fireline intensity kW/m, flame length m, wind km/h, slope rise/run.

- Fuel bed: dead particles 1-h, 10-h, 100-h and cured herbaceous; live herbaceous and woody.
  Weighting by surface area, size-class sorting of net loads (Albini 1976), live moisture of
  extinction (Albini 1976), silica 0.0555 total / 0.01 effective, particle density 32 lb/ft3.
- Dynamic models (Scott & Burgan 2005): live herbaceous moisture below 30 % -> all herb load
  is dead (cured); 30-120 % -> the fraction 1.333 - 1.11 * M_herb is transferred (Behave's form
  of (1.20 - M) / 0.9); the cured part keeps the herb SAV and takes the 1-h moisture.
- Midflame wind from the 20 ft wind with the wind adjustment factor (Andrews 2012):
  unsheltered 1.83 / ln((20 + 0.36 d) / (0.13 d)) with d the fuel bed depth (ft); sheltered,
  when canopy cover * crown ratio / 3 >= 0.05 and canopy height >= 6 ft,
  0.555 / (sqrt(f H) ln((20 + 0.36 H) / (0.13 H))) with f = cover * crown ratio / 3, H in ft.
- Wind and slope: phi_W and phi_S applied as horizontal vectors (wind "from" direction,
  slope pushing upslope), the resultant gives the head rate and its direction.
- Wind limit as Behave applies it: phi_S is capped at 0.9 * I_R, and when the effective wind
  speed exceeds 0.9 * I_R (ft/min vs Btu/ft2/min, Rothermel's empirical limit) it is set to
  that limit and the head rate recomputed from it.
- Ellipse: length-to-width ratio from Anderson (1983) with the effective wind speed, capped
  at 8 (Behave's surface fire size), eccentricity e = sqrt(LW^2 - 1) / LW, backing rate
  R (1 - e) / (1 + e); the rate from the ignition point in a direction at angle t off the head is R (1 - e) / (1 - e cos t)
  (polar ellipse about its rear focus, Behave's "from ignition point" mode); Behave's fireline
  intensity in a direction of interest is that rate times I_R t_r / 60, and so is ours.
- Fireline intensity I = R I_R t_r / 60 with residence time t_r = 384 / sigma (Anderson 1969);
  flame length 0.45 I^0.46 ft (Byram 1959, I in Btu/ft/s).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

M_PER_FT = 0.3048
FT_MIN_PER_MPH = 88.0
KMH_PER_MPH = 1.609344
LB_FT2_PER_TON_AC = 2000.0 / 43560.0
KW_M_PER_BTU_FT_S = 1055.05585262 / 1000.0 / M_PER_FT
#: 20 ft wind = 10 m wind / 1.15 (Turner & Lawson 1978, as Behave)
TEN_METER_TO_TWENTY_FOOT = 1.0 / 1.15

# Indices into the fuel bed vector returned by `fuelbed`.
FB_R0 = 0  # no-wind no-slope spread rate, ft/min
FB_IR = 1  # reaction intensity, Btu/ft2/min
FB_SIGMA = 2  # characteristic SAV, 1/ft
FB_BETA = 3  # packing ratio
FB_BETA_REL = 4  # relative packing ratio
FB_WIND_B = 5
FB_WIND_C = 6
FB_WIND_E = 7
FB_RES_TIME = 8  # residence time, min
FB_DEPTH = 9  # fuel bed depth, ft
FB_PHI_W = 10  # C * beta_rel^-E: phi_W = this * U^B (U midflame wind, ft/min)
FB_PHI_S = 11  # 5.275 * beta^-0.3: phi_S = this * tan(slope)^2
FB_WAF_OPEN = 12  # unsheltered wind adjustment factor (depends on the depth only)
FB_SIZE = 13

_PARTICLE_DENSITY = 32.0  # lb/ft3
_TOTAL_SILICA = 0.0555
_EFFECTIVE_SILICA = 0.01


@njit(cache=True)
def _size_class(sav):
    # Albini (1976) SAV bins used to sort net loads
    if sav >= 1200.0:
        return 0
    if sav >= 192.0:
        return 1
    if sav >= 96.0:
        return 2
    if sav >= 48.0:
        return 3
    if sav >= 16.0:
        return 4
    return 5


@njit(cache=True)
def fuelbed(row, m1, m10, m100, m_herb, m_woody):
    """Moisture-dependent fuel bed properties of one fuel model (a row of FUEL_ARRAY).

    Moistures are fractions. Returns a float64 vector indexed by the ``FB_*`` constants;
    R0 = 0 for non-burnable models or fuels above their moisture of extinction.
    """
    out = np.zeros(FB_SIZE)
    depth = row[8]
    out[FB_DEPTH] = depth
    out[FB_WAF_OPEN] = 1.83 / math.log((20.0 + 0.36 * depth) / (0.13 * depth)) if depth > 1e-7 else 0.0
    if row[13] == 0.0 or depth <= 0.0:
        return out
    # particles: dead 1h, 10h, 100h, cured herb ; live herb, woody
    load_d = np.array([row[0], row[1], row[2], 0.0]) * LB_FT2_PER_TON_AC
    load_l = np.array([row[3], row[4]]) * LB_FT2_PER_TON_AC
    sav_d = np.array([row[5], 109.0, 30.0, row[6]])
    sav_l = np.array([row[6], row[7]])
    moist_d = np.array([m1, m10, m100, m1])
    moist_l = np.array([m_herb, m_woody])
    has_live = load_l[0] > 0.0 or load_l[1] > 0.0
    if row[12] != 0.0 and load_l[0] > 0.0:
        if m_herb < 0.30:
            load_d[3] = load_l[0]
            load_l[0] = 0.0
        elif m_herb <= 1.20:
            load_d[3] = load_l[0] * (1.333 - 1.11 * m_herb)
            load_l[0] -= load_d[3]

    area_d = load_d * sav_d / _PARTICLE_DENSITY
    area_l = load_l * sav_l / _PARTICLE_DENSITY
    total_d = area_d.sum()
    total_l = area_l.sum()
    frac_d = area_d / total_d if total_d > 1e-7 else np.zeros(4)
    frac_l = area_l / total_l if total_l > 1e-7 else np.zeros(2)
    f_dead = total_d / (total_d + total_l)
    f_live = 1.0 - f_dead

    # size-sorted weights for the net loads
    bins_d = np.zeros(6)
    bins_l = np.zeros(6)
    for i in range(4):
        bins_d[_size_class(sav_d[i])] += frac_d[i]
    for i in range(2):
        bins_l[_size_class(sav_l[i])] += frac_l[i]
    wn_d = 0.0
    wn_l = 0.0
    for i in range(4):
        wn_d += bins_d[_size_class(sav_d[i])] * load_d[i] * (1.0 - _TOTAL_SILICA)
    for i in range(2):
        wn_l += bins_l[_size_class(sav_l[i])] * load_l[i] * (1.0 - _TOTAL_SILICA)

    heat_d = frac_d.sum() * row[10]
    heat_l = frac_l.sum() * row[11]
    silica_d = frac_d.sum() * _EFFECTIVE_SILICA
    silica_l = frac_l.sum() * _EFFECTIVE_SILICA
    mw_d = (frac_d * moist_d).sum()
    mw_l = (frac_l * moist_l).sum()
    sigma = f_dead * (frac_d * sav_d).sum() + f_live * (frac_l * sav_l).sum()

    # moisture of extinction: dead from the model, live from Albini (1976)
    mx_d = row[9]
    mx_l = 0.0
    if has_live:
        fine_dead = 0.0
        fine_dead_m = 0.0
        for i in range(4):
            w = load_d[i] * math.exp(-138.0 / sav_d[i])
            fine_dead += w
            fine_dead_m += w * moist_d[i]
        fine_live = 0.0
        for i in range(2):
            fine_live += load_l[i] * math.exp(-500.0 / sav_l[i])
        m_fine_dead = fine_dead_m / fine_dead if fine_dead > 1e-7 else 0.0
        ratio = fine_dead / fine_live if fine_live > 1e-7 else 0.0
        mx_l = 2.9 * ratio * (1.0 - m_fine_dead / mx_d) - 0.226
        if mx_l < mx_d:
            mx_l = mx_d

    bulk_density = (load_d.sum() + load_l.sum()) / depth
    beta = (load_d.sum() + load_l.sum()) / (depth * _PARTICLE_DENSITY)
    beta_op = 3.348 / sigma**0.8189
    beta_rel = beta / beta_op

    heat_sink = 0.0
    for i in range(4):
        heat_sink += f_dead * frac_d[i] * (250.0 + 1116.0 * moist_d[i]) * math.exp(-138.0 / sav_d[i])
    for i in range(2):
        heat_sink += f_live * frac_l[i] * (250.0 + 1116.0 * moist_l[i]) * math.exp(-138.0 / sav_l[i])
    heat_sink *= bulk_density
    flux = math.exp((0.792 + 0.681 * math.sqrt(sigma)) * (beta + 0.1)) / (192.0 + 0.2595 * sigma)

    a = 133.0 / sigma**0.7913
    s15 = sigma**1.5
    gamma = s15 / (495.0 + 0.0594 * s15) * beta_rel**a * math.exp(a * (1.0 - beta_rel))
    ir = gamma * (wn_d * heat_d * _eta_m(mw_d, mx_d) * _eta_s(silica_d)
                  + wn_l * heat_l * _eta_m(mw_l, mx_l) * _eta_s(silica_l))

    out[FB_R0] = ir * flux / heat_sink if heat_sink >= 1e-7 else 0.0
    out[FB_IR] = ir
    out[FB_SIGMA] = sigma
    out[FB_BETA] = beta
    out[FB_BETA_REL] = beta_rel
    out[FB_WIND_C] = 7.47 * math.exp(-0.133 * sigma**0.55)
    out[FB_WIND_B] = 0.02526 * sigma**0.54
    out[FB_WIND_E] = 0.715 * math.exp(-0.000359 * sigma)
    out[FB_RES_TIME] = 384.0 / sigma
    out[FB_PHI_W] = out[FB_WIND_C] * beta_rel ** (-out[FB_WIND_E])
    out[FB_PHI_S] = 5.275 * beta ** (-0.3)
    return out


@njit(cache=True)
def _eta_m(moisture, extinction):
    if extinction <= 0.0 or moisture >= extinction:
        return 0.0
    r = moisture / extinction
    return 1.0 - 2.59 * r + 5.11 * r * r - 3.52 * r * r * r


@njit(cache=True)
def _eta_s(silica):
    if silica <= 0.0:
        return 0.0
    return min(1.0, 0.174 / silica**0.19)


@njit(cache=True)
def crown_ratio(canopy_height_m, canopy_base_height_m):
    """Crown ratio (CH - CBH) / CH, the share of the canopy height with foliage (0 without canopy)."""
    return (canopy_height_m - canopy_base_height_m) / canopy_height_m if canopy_height_m > 0 else 0.0


@njit(cache=True)
def wind_adjustment_factor(fb, canopy_cover, canopy_height_m, canopy_crown_ratio):
    """Andrews (2012) wind adjustment factor (midflame / 20 ft wind) of fuel bed `fb`, unitless.

    Sheltered when cover * crown ratio / 3 >= 0.05 and canopy height >= 6 ft; unsheltered it is
    1.83 / ln((20 + 0.36 d) / (0.13 d)), d the fuel bed depth (ft), kept in fb[FB_WAF_OPEN].
    """
    height_ft = canopy_height_m / M_PER_FT
    crown_fraction = canopy_cover * canopy_crown_ratio / 3.0
    if canopy_cover < 1e-7 or crown_fraction < 0.05 or height_ft < 6.0:
        return fb[FB_WAF_OPEN]
    return 0.555 / (math.sqrt(crown_fraction * height_ft) * math.log((20.0 + 0.36 * height_ft) / (0.13 * height_ft)))


@njit(cache=True)
def head_fire(fb, midflame_ft_min, wind_from_deg, slope, aspect_deg):
    """Head fire of a fuel bed under midflame wind (ft/min) on a slope (rise/run).

    Returns (spread rate ft/min, direction of max spread deg clockwise from north that the head
    moves toward, effective wind speed ft/min, length-to-width ratio, eccentricity).
    """
    r0 = fb[FB_R0]
    if r0 <= 0.0:
        return 0.0, 0.0, 0.0, 1.0, 0.0
    b = fb[FB_WIND_B]
    phi_w = fb[FB_PHI_W] * midflame_ft_min**b if midflame_ft_min >= 1e-7 else 0.0
    phi_s = fb[FB_PHI_S] * slope * slope
    limit = 0.9 * fb[FB_IR]
    if phi_s > limit:
        phi_s = limit
    # wind and slope as vectors in a frame whose x axis points upslope
    rel = math.radians(wind_from_deg - aspect_deg)
    x = r0 * phi_s + r0 * phi_w * math.cos(rel)
    y = r0 * phi_w * math.sin(rel)
    ros = r0 + math.sqrt(x * x + y * y)
    azimuth = math.degrees(math.atan2(y, x))
    if azimuth < -1e-20:
        azimuth += 360.0
    if abs(azimuth) < 0.5:  # BehavePlus snaps a near-upslope head to upslope
        azimuth = 0.0
    direction = (azimuth + aspect_deg + 180.0) % 360.0
    phi_e = ros / r0 - 1.0
    ews = (phi_e / fb[FB_PHI_W]) ** (1.0 / b) if phi_e > 0.0 else 0.0
    if ews > limit:
        ews = limit
        ros = r0 * (1.0 + fb[FB_PHI_W] * limit**b)
    lwr = length_to_width(ews / FT_MIN_PER_MPH)
    ecc = math.sqrt(lwr * lwr - 1.0) / lwr
    return ros, direction, ews, lwr, ecc


@njit(cache=True)
def length_to_width(effective_wind_mph):
    """Anderson (1983) length-to-width ratio of a surface fire, capped at 8, as Behave: its
    coefficients 0.2566 and 0.1548 per m/s written per mph."""
    if effective_wind_mph <= 1e-7:
        return 1.0
    lwr = (0.936 * math.exp(0.1147 * effective_wind_mph) + 0.461 * math.exp(-0.0692 * effective_wind_mph)
           - 0.397)
    return min(max(lwr, 1.0), 8.0)


@njit(cache=True)
def fireline_intensity(ros_ft_min, fb):
    """Byram's fireline intensity, Btu/ft/s."""
    return ros_ft_min * fb[FB_IR] * fb[FB_RES_TIME] / 60.0


@njit(cache=True)
def flame_length(intensity_btu_ft_s):
    """Byram (1959) flame length, ft."""
    return 0.45 * intensity_btu_ft_s**0.46 if intensity_btu_ft_s >= 1e-7 else 0.0
