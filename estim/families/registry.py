"""Find the families: import every module or folder in `estim.families`, each registering its own.

Adding a family is one module (or folder) here with one call to `register`: nothing else in estim names it.
The spec reader, the fit runner, the reports and the studies call `load_all()` and read `FAMILIES`. An error
raised inside a family module (a bug, or a missing dependency of that module) is not hidden.
"""

from __future__ import annotations

import importlib
import pkgutil

from estim.families.base import FAMILIES, Family

# Modules of estim.families that are not families: the interface, this finder and shared kernels.
NOT_FAMILIES = frozenset({"base", "registry", "kernels"})


def family_modules() -> tuple[str, ...]:
    """The modules and packages of `estim.families` that hold families, in name order."""
    import estim.families

    return tuple(
        f"estim.families.{m.name}"
        for m in sorted(pkgutil.iter_modules(estim.families.__path__), key=lambda m: m.name)
        if m.name not in NOT_FAMILIES and not m.name.startswith("_")
    )


def load_all() -> dict[str, Family]:
    """Import every family module and return the registry (name -> `Family`)."""
    for module in family_modules():
        importlib.import_module(module)
    return FAMILIES
