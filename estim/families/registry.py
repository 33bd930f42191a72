"""Import every family module so that each registers itself in `FAMILIES`.

The fit runner and the spec reader call `load_all()` instead of importing family modules themselves: a family
is available as soon as its module exists in `FAMILY_MODULES`. A module that is absent is skipped; an error
raised *inside* a family module (a bug, or a missing dependency of that module) is not hidden.
"""

from __future__ import annotations

import importlib

from estim.families.base import FAMILIES, Family

FAMILY_MODULES: tuple[str, ...] = (
    "estim.families.single_register",
    "estim.families.closed",
    "estim.families.border",
)


def load_all() -> dict[str, Family]:
    """Import the family modules that exist and return the registry (name -> `Family`)."""
    for module in FAMILY_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if (
                e.name != module
            ):  # the module exists but something it imports does not: a real error
                raise
    return FAMILIES
