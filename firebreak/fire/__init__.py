"""Fire model: pure numpy + Numba, no Ray, no torch. Units as DESIGN.md (m/min, kW/m, m, km/h).

Modules, one concept each: ``fuel_models`` (the fuel model tables), ``weather`` (Moisture,
Weather), ``rothermel`` (Behave's surface fire kernels), ``crown`` (crown fire: Scott &
Reinhardt, Cruz), ``behaviour`` (per-cell fire behaviour, grids, directional intensity, crown
fire indices), ``scenario`` (Scenario, FireSeason, ScenarioSampler), ``spread`` (the lazy
minimum-travel-time search), ``simulation`` (simulate, simulate_many, IncrementalSimulator).
"""

from .behaviour import (FireBehaviour, crown_fire_indices, directional_intensity, fire_behaviour_at, rate_toward,
                        surface_fire)
from .fuel_models import FUEL_MODELS, FuelModel
from .scenario import FireSeason, Scenario, ScenarioSampler
from .simulation import BatchResult, IncrementalSimulator, SimulationResult, simulate, simulate_many
from .weather import Moisture, Weather

__all__ = [
    "FUEL_MODELS", "BatchResult", "FireBehaviour", "FireSeason", "FuelModel", "IncrementalSimulator", "Moisture",
    "Scenario", "ScenarioSampler", "SimulationResult", "Weather", "crown_fire_indices", "directional_intensity",
    "fire_behaviour_at", "rate_toward", "simulate", "simulate_many", "surface_fire",
]
