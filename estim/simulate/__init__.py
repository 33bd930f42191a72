"""The calibrated simulator of the Russia–Kazakhstan border: SYNTHETIC records with their ground truth.

    from estim import simulate as sim
    s = sim.simulate(seed=sim.DEFAULT_SEED)        # records (dict of tables) + truth (xarray.Dataset)
    sim.write_simulation(s, "out/")                # NAME.csv, truth.nc, README.md, SHA256SUMS

The generative process is written as equations in docs/simulator.md; docs/calibration.md compares it with the
public figures listed with their sources in docs/sources.md (made by scripts/calibration_table.py from
`calibration_table`).
"""

from estim.simulate.calibration import assumptions_table, calibration_markdown, calibration_table
from estim.simulate.config import DEFAULT_SEED, SimulationConfig
from estim.simulate.core import Simulation, simulate
from estim.simulate.output import compare_folders, write_simulation

__all__ = [
    "DEFAULT_SEED",
    "Simulation",
    "SimulationConfig",
    "assumptions_table",
    "calibration_markdown",
    "calibration_table",
    "compare_folders",
    "simulate",
    "write_simulation",
]
