"""`estim forecast`: the three measures as counterfactual forecasts from a border fit."""

from __future__ import annotations
