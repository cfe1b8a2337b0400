"""Fire behaviour fuel models as data: Scott & Burgan (2005) 40, Anderson (1982) 13, non-burnable.

Units are the ones the sources publish and Rothermel's equations use (US customary):
loads in tons/acre, surface-area-to-volume ratios (SAV) in 1/ft, fuel bed depth in ft,
dead fuel moisture of extinction as a fraction, heat content in Btu/lb. The 10-h and
100-h SAV ratios are the standard 109 and 30 1/ft of every model (Rothermel 1972).

Sources:
- Scott, J.H. & Burgan, R.E. (2005). Standard fire behavior fuel models: a comprehensive set
  for use with Rothermel's surface fire spread model. USDA For. Serv. RMRS-GTR-153, Table 7.
  Codes 101-204 and the non-burnable codes 91-99. "Dynamic" models transfer live herbaceous
  load to dead as the herbs cure (see ``rothermel.py``).
- Anderson, H.E. (1982). Aids to determining fuel models for estimating fire behavior.
  USDA For. Serv. INT-GTR-122, Table 1 (models 1-13; static; live SAV 1500 1/ft as in BEHAVE),
  with the loads at the precision of Albini, F.A. (1976), Estimating wildfire behavior and
  effects, INT-GTR-30 (lb/ft2), from which BEHAVE takes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: SAV ratios (1/ft) shared by every model's 10-h and 100-h dead fuel.
SAV_10H = 109.0
SAV_100H = 30.0


@dataclass(frozen=True)
class FuelModel:
    """One fire behaviour fuel model (units in the module docstring)."""

    code: int
    name: str
    load_1h: float  # tons/ac
    load_10h: float  # tons/ac
    load_100h: float  # tons/ac
    load_herb: float  # tons/ac, live herbaceous
    load_woody: float  # tons/ac, live woody
    sav_1h: float  # 1/ft
    sav_herb: float  # 1/ft
    sav_woody: float  # 1/ft
    depth: float  # ft
    mx_dead: float  # fraction
    heat_dead: float  # Btu/lb
    heat_live: float  # Btu/lb
    dynamic: bool

    @property
    def burnable(self) -> bool:
        return self.load_1h + self.load_10h + self.load_100h + self.load_herb + self.load_woody > 0


#: tons/acre per lb/ft2: Anderson's loads are given as Albini (1976) lists them in lb/ft2
#: (BEHAVE's inputs); Anderson (1982) prints them rounded to 0.01 t/ac.
LB = 43560.0 / 2000.0

# code, name, 1h, 10h, 100h, herb, woody (t/ac), SAV 1h, herb, woody (1/ft), depth (ft), Mx, h dead, h live, dynamic
_TABLE = [
    # Anderson (1982), INT-GTR-122
    (1, "FM1 short grass", 0.034 * LB, 0.0, 0.0, 0.0, 0.0, 3500, 1500, 1500, 1.0, 0.12, 8000, 8000, False),
    (2, "FM2 timber (grass and understory)", 0.092 * LB, 0.046 * LB, 0.023 * LB, 0.023 * LB, 0.0, 3000, 1500, 1500, 1.0, 0.15, 8000, 8000, False),
    (3, "FM3 tall grass", 0.138 * LB, 0.0, 0.0, 0.0, 0.0, 1500, 1500, 1500, 2.5, 0.25, 8000, 8000, False),
    (4, "FM4 chaparral", 0.23 * LB, 0.184 * LB, 0.092 * LB, 0.0, 0.23 * LB, 2000, 1500, 1500, 6.0, 0.20, 8000, 8000, False),
    (5, "FM5 brush", 0.046 * LB, 0.023 * LB, 0.0, 0.0, 0.092 * LB, 2000, 1500, 1500, 2.0, 0.20, 8000, 8000, False),
    (6, "FM6 dormant brush, hardwood slash", 0.069 * LB, 0.115 * LB, 0.092 * LB, 0.0, 0.0, 1750, 1500, 1500, 2.5, 0.25, 8000, 8000, False),
    (7, "FM7 southern rough", 0.052 * LB, 0.086 * LB, 0.069 * LB, 0.0, 0.017 * LB, 1750, 1500, 1500, 2.5, 0.40, 8000, 8000, False),
    (8, "FM8 closed timber litter", 0.069 * LB, 0.046 * LB, 0.115 * LB, 0.0, 0.0, 2000, 1500, 1500, 0.2, 0.30, 8000, 8000, False),
    (9, "FM9 hardwood litter", 0.134 * LB, 0.019 * LB, 0.007 * LB, 0.0, 0.0, 2500, 1500, 1500, 0.2, 0.25, 8000, 8000, False),
    (10, "FM10 timber (litter and understory)", 0.138 * LB, 0.092 * LB, 0.23 * LB, 0.0, 0.092 * LB, 2000, 1500, 1500, 1.0, 0.25, 8000, 8000, False),
    (11, "FM11 light logging slash", 0.069 * LB, 0.207 * LB, 0.253 * LB, 0.0, 0.0, 1500, 1500, 1500, 1.0, 0.15, 8000, 8000, False),
    (12, "FM12 medium logging slash", 0.184 * LB, 0.644 * LB, 0.759 * LB, 0.0, 0.0, 1500, 1500, 1500, 2.3, 0.20, 8000, 8000, False),
    (13, "FM13 heavy logging slash", 0.322 * LB, 1.058 * LB, 1.288 * LB, 0.0, 0.0, 1500, 1500, 1500, 3.0, 0.25, 8000, 8000, False),
    # Scott & Burgan (2005) non-burnable
    (91, "NB1 urban/developed", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False),
    (92, "NB2 snow/ice", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False),
    (93, "NB3 agricultural", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False),
    (98, "NB8 open water", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False),
    (99, "NB9 bare ground", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False),
    # Scott & Burgan (2005), RMRS-GTR-153: grass (GR)
    (101, "GR1 short, sparse dry climate grass", 0.10, 0.0, 0.0, 0.30, 0.0, 2200, 2000, 1500, 0.4, 0.15, 8000, 8000, True),
    (102, "GR2 low load, dry climate grass", 0.10, 0.0, 0.0, 1.00, 0.0, 2000, 1800, 1500, 1.0, 0.15, 8000, 8000, True),
    (103, "GR3 low load, very coarse, humid climate grass", 0.10, 0.40, 0.0, 1.50, 0.0, 1500, 1300, 1500, 2.0, 0.30, 8000, 8000, True),
    (104, "GR4 moderate load, dry climate grass", 0.25, 0.0, 0.0, 1.90, 0.0, 2000, 1800, 1500, 2.0, 0.15, 8000, 8000, True),
    (105, "GR5 low load, humid climate grass", 0.40, 0.0, 0.0, 2.50, 0.0, 1800, 1600, 1500, 1.5, 0.40, 8000, 8000, True),
    (106, "GR6 moderate load, humid climate grass", 0.10, 0.0, 0.0, 3.40, 0.0, 2200, 2000, 1500, 1.5, 0.40, 9000, 9000, True),
    (107, "GR7 high load, dry climate grass", 1.00, 0.0, 0.0, 5.40, 0.0, 2000, 1800, 1500, 3.0, 0.15, 8000, 8000, True),
    (108, "GR8 high load, very coarse, humid climate grass", 0.50, 1.00, 0.0, 7.30, 0.0, 1500, 1300, 1500, 4.0, 0.30, 8000, 8000, True),
    (109, "GR9 very high load, humid climate grass", 1.00, 1.00, 0.0, 9.00, 0.0, 1800, 1600, 1500, 5.0, 0.40, 8000, 8000, True),
    # grass-shrub (GS)
    (121, "GS1 low load, dry climate grass-shrub", 0.20, 0.0, 0.0, 0.50, 0.65, 2000, 1800, 1800, 0.9, 0.15, 8000, 8000, True),
    (122, "GS2 moderate load, dry climate grass-shrub", 0.50, 0.50, 0.0, 0.60, 1.00, 2000, 1800, 1800, 1.5, 0.15, 8000, 8000, True),
    (123, "GS3 moderate load, humid climate grass-shrub", 0.30, 0.25, 0.0, 1.45, 1.25, 1800, 1600, 1600, 1.8, 0.40, 8000, 8000, True),
    (124, "GS4 high load, humid climate grass-shrub", 1.90, 0.30, 0.10, 3.40, 7.10, 1800, 1600, 1600, 2.1, 0.40, 8000, 8000, True),
    # shrub (SH)
    (141, "SH1 low load, dry climate shrub", 0.25, 0.25, 0.0, 0.15, 1.30, 2000, 1800, 1600, 1.0, 0.15, 8000, 8000, True),
    (142, "SH2 moderate load, dry climate shrub", 1.35, 2.40, 0.75, 0.0, 3.85, 2000, 1800, 1600, 1.0, 0.15, 8000, 8000, False),
    (143, "SH3 moderate load, humid climate shrub", 0.45, 3.00, 0.0, 0.0, 6.20, 1600, 1800, 1400, 2.4, 0.40, 8000, 8000, False),
    (144, "SH4 low load, humid climate timber-shrub", 0.85, 1.15, 0.20, 0.0, 2.55, 2000, 1800, 1600, 3.0, 0.30, 8000, 8000, False),
    (145, "SH5 high load, dry climate shrub", 3.60, 2.10, 0.0, 0.0, 2.90, 750, 1800, 1600, 6.0, 0.15, 8000, 8000, False),
    (146, "SH6 low load, humid climate shrub", 2.90, 1.45, 0.0, 0.0, 1.40, 750, 1800, 1600, 2.0, 0.30, 8000, 8000, False),
    (147, "SH7 very high load, dry climate shrub", 3.50, 5.30, 2.20, 0.0, 3.40, 750, 1800, 1600, 6.0, 0.15, 8000, 8000, False),
    (148, "SH8 high load, humid climate shrub", 2.05, 3.40, 0.85, 0.0, 4.35, 750, 1800, 1600, 3.0, 0.40, 8000, 8000, False),
    (149, "SH9 very high load, humid climate shrub", 4.50, 2.45, 0.0, 1.55, 7.00, 750, 1800, 1500, 4.4, 0.40, 8000, 8000, True),
    # timber-understory (TU)
    (161, "TU1 low load, dry climate timber-grass-shrub", 0.20, 0.90, 1.50, 0.20, 0.90, 2000, 1800, 1600, 0.6, 0.20, 8000, 8000, True),
    (162, "TU2 moderate load, humid climate timber-shrub", 0.95, 1.80, 1.25, 0.0, 0.20, 2000, 1800, 1600, 1.0, 0.30, 8000, 8000, False),
    (163, "TU3 moderate load, humid climate timber-grass-shrub", 1.10, 0.15, 0.25, 0.65, 1.10, 1800, 1600, 1400, 1.3, 0.30, 8000, 8000, True),
    (164, "TU4 dwarf conifer with understory", 4.50, 0.0, 0.0, 0.0, 2.00, 2300, 1800, 2000, 0.5, 0.12, 8000, 8000, False),
    (165, "TU5 very high load, dry climate timber-shrub", 4.00, 4.00, 3.00, 0.0, 3.00, 1500, 1800, 750, 1.0, 0.25, 8000, 8000, False),
    # timber litter (TL)
    (181, "TL1 low load compact conifer litter", 1.00, 2.20, 3.60, 0.0, 0.0, 2000, 1800, 1600, 0.2, 0.30, 8000, 8000, False),
    (182, "TL2 low load broadleaf litter", 1.40, 2.30, 2.20, 0.0, 0.0, 2000, 1800, 1600, 0.2, 0.25, 8000, 8000, False),
    (183, "TL3 moderate load conifer litter", 0.50, 2.20, 2.80, 0.0, 0.0, 2000, 1800, 1600, 0.3, 0.20, 8000, 8000, False),
    (184, "TL4 small downed logs", 0.50, 1.50, 4.20, 0.0, 0.0, 2000, 1800, 1600, 0.4, 0.25, 8000, 8000, False),
    (185, "TL5 high load conifer litter", 1.15, 2.50, 4.40, 0.0, 0.0, 2000, 1800, 1600, 0.6, 0.25, 8000, 8000, False),
    (186, "TL6 moderate load broadleaf litter", 2.40, 1.20, 1.20, 0.0, 0.0, 2000, 1800, 1600, 0.3, 0.25, 8000, 8000, False),
    (187, "TL7 large downed logs", 0.30, 1.40, 8.10, 0.0, 0.0, 2000, 1800, 1600, 0.4, 0.25, 8000, 8000, False),
    (188, "TL8 long-needle litter", 5.80, 1.40, 1.10, 0.0, 0.0, 1800, 1800, 1600, 0.3, 0.35, 8000, 8000, False),
    (189, "TL9 very high load broadleaf litter", 6.65, 3.30, 4.15, 0.0, 0.0, 1800, 1800, 1600, 0.6, 0.35, 8000, 8000, False),
    # slash-blowdown (SB)
    (201, "SB1 low load activity fuel", 1.50, 3.00, 11.00, 0.0, 0.0, 2000, 1800, 1600, 1.0, 0.25, 8000, 8000, False),
    (202, "SB2 moderate load activity fuel or low load blowdown", 4.50, 4.25, 4.00, 0.0, 0.0, 2000, 1800, 1600, 1.0, 0.25, 8000, 8000, False),
    (203, "SB3 high load activity fuel or moderate load blowdown", 5.50, 2.75, 3.00, 0.0, 0.0, 2000, 1800, 1600, 1.2, 0.25, 8000, 8000, False),
    (204, "SB4 high load blowdown", 5.25, 3.50, 5.25, 0.0, 0.0, 2000, 1800, 1600, 2.7, 0.25, 8000, 8000, False),
]

#: Fuel models by LANDFIRE code (the keys equal ``firebreak.landscape.fuel_codes.KNOWN_CODES``).
FUEL_MODELS: dict[int, FuelModel] = {row[0]: FuelModel(*row) for row in _TABLE}

#: Columns of `FUEL_ARRAY`, the form the Numba kernels read.
COLUMNS = ("load_1h", "load_10h", "load_100h", "load_herb", "load_woody", "sav_1h", "sav_herb",
           "sav_woody", "depth", "mx_dead", "heat_dead", "heat_live", "dynamic", "burnable")


def _pack() -> np.ndarray:
    table = np.zeros((256, len(COLUMNS)), np.float64)
    for code, model in FUEL_MODELS.items():
        table[code] = [float(getattr(model, name)) for name in COLUMNS]
    table.setflags(write=False)
    return table


#: (256, len(COLUMNS)) float64 table indexed by fuel code; rows of unknown codes are zero
#: (non-burnable).
FUEL_ARRAY: np.ndarray = _pack()
