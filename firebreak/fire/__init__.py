"""Fire model: fuel models, Rothermel surface fire + crown fire, scenarios, spread by minimum
travel time. Pure numpy + Numba; no Ray, no torch. Units in DESIGN.md (m/min, kW/m, m, km/h)."""

from .behaviour import FireBehaviour, directional_intensity, fire_behaviour_at, rate_toward, surface_fire
from .fuel_models import FUEL_MODELS, FuelModel
from .scenario import FireSeason, Scenario, ScenarioSampler
from .simulate import BatchResult, IncrementalSimulator, SimulationResult, simulate, simulate_many
from .weather import Moisture, Weather

__all__ = [
    "FUEL_MODELS", "BatchResult", "FireBehaviour", "FireSeason", "FuelModel", "IncrementalSimulator", "Moisture",
    "Scenario", "ScenarioSampler", "SimulationResult", "Weather", "directional_intensity", "fire_behaviour_at",
    "rate_toward", "simulate", "simulate_many", "surface_fire",
]
