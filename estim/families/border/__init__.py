"""The border model (family "border"): see `estim.families.border.model` for the equations."""

from estim.families.border.model import BORDER, border_data

__all__ = ["BORDER", "border_data"]
