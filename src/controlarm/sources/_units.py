"""Lab unit harmonisation factors, computed with ``pint`` once per distinct unit spelling.

Room: ``sources``. Units are harmonised on entry (DESIGN.md section 3). This module only turns a
unit *string* into a multiplication factor; the multiplication itself runs inside the engine
(``sources._read`` joins a small mapping table), so row-level work never leaves DuckDB.

Harmonised analytes (everything else passes through with its own unit):

* ``d_dimer`` -> µg/L FEU. Mass concentrations are converted by pint (ng/mL = µg/L, mg/L x 1000,
  µg/mL x 1000, ...). A ``DDU`` suffix means D-dimer units, converted to fibrinogen-equivalent
  units by x 2 (1 DDU ~ 0.5 FEU); ``FEU`` or no suffix means FEU already (no suffix is assumed
  FEU and reported as a warning by ``validate``).
* ``crp`` -> mg/L (mg/dL x 10, ...).

Floating point: a factor that pint computes as ``1.0000000000000002`` (ng/mL -> µg/L) is snapped
to 12 significant digits, so equal units give exactly the input value (x 1.0), and 1000 stays 1000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

__all__ = ["HARMONISED_LABS", "UnitFactor", "harmonised_unit", "lab_unit_factor"]

#: lab_category -> (pint target unit, label of the harmonised unit).
HARMONISED_LABS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "d_dimer": ("microgram / liter", "µg/L FEU"),
        "crp": ("milligram / liter", "mg/L"),
    }
)

_SUFFIX = re.compile(r"[\s(\[]*\b(FEU|DDU)\b[)\]]*\s*$", re.IGNORECASE)
_MICRO = str.maketrans({"\u00b5": "u", "\u03bc": "u"})  # micro sign and Greek mu


def harmonised_unit(lab_category: str) -> str | None:
    """Label of the unit ``lab_category`` is harmonised to, or None when it passes through.

    Examples
    --------
    >>> harmonised_unit("d_dimer")
    'µg/L FEU'
    >>> harmonised_unit("crp")
    'mg/L'
    >>> harmonised_unit("ferritin") is None
    True
    """
    entry = HARMONISED_LABS.get(lab_category)
    return entry[1] if entry else None


@dataclass(frozen=True)
class UnitFactor:
    """How one unit spelling of one analyte converts.

    Attributes
    ----------
    factor : float or None
        Multiply ``lab_value_numeric`` by this to get the harmonised value; None when the unit
        cannot be converted.
    unit : str or None
        Label of the harmonised unit (``"µg/L FEU"``, ``"mg/L"``), None when not convertible.
    problem : str or None
        Why the unit cannot be converted (for the validation message).
    assumed_feu : bool
        True for a D-dimer unit without an FEU/DDU suffix (read as FEU).
    """

    factor: float | None
    unit: str | None
    problem: str | None = None
    assumed_feu: bool = False


@lru_cache(maxsize=1)
def _registry():
    import pint  # imported lazily: building the registry takes a few hundred milliseconds

    return pint.UnitRegistry()


def _snap(x: float) -> float:
    return float(f"{x:.12g}")


@lru_cache(maxsize=256)
def lab_unit_factor(lab_category: str, unit: str) -> UnitFactor:
    """Factor that converts ``unit`` of ``lab_category`` to the harmonised unit.

    Parameters
    ----------
    lab_category : str
        One of ``HARMONISED_LABS`` (``"d_dimer"``, ``"crp"``).
    unit : str
        The unit as written in ``labs.reference_unit``, e.g. ``"ng/mL"``, ``"mg/L FEU"``,
        ``"µg/L DDU"``, ``"mg/dL"``. Case-insensitive; µ, μ, u and mcg all mean micro.

    Returns
    -------
    UnitFactor

    Examples
    --------
    >>> lab_unit_factor("d_dimer", "ng/mL").factor
    1.0
    >>> lab_unit_factor("d_dimer", "mg/L FEU").factor
    1000.0
    >>> lab_unit_factor("d_dimer", "µg/L DDU").factor
    2.0
    >>> lab_unit_factor("crp", "mg/dL").factor
    10.0
    """
    import pint

    target, label = HARMONISED_LABS[lab_category]
    text = unit.strip()
    kind = None
    m = _SUFFIX.search(text)
    if m:
        kind = m.group(1).upper()
        text = text[: m.start()].strip()
    if kind and lab_category != "d_dimer":
        return UnitFactor(None, None, f"{kind} applies to D-dimer only")
    spelled = text.translate(_MICRO).lower().replace("mcg", "ug")
    if not spelled:
        return UnitFactor(None, None, "no unit given")
    ureg = _registry()
    try:
        factor = ureg.Quantity(1.0, spelled).to(target).magnitude
    except pint.errors.DimensionalityError:
        return UnitFactor(None, None, f"not a mass concentration (cannot convert to {label})")
    except Exception:  # pint raises several parse error types for garbage strings
        return UnitFactor(None, None, "not a unit pint recognises")
    factor = _snap(float(factor))
    if not factor > 0:
        return UnitFactor(None, None, "converts with a non-positive factor")
    if kind == "DDU":
        factor *= 2.0
    return UnitFactor(factor, label, None, assumed_feu=(lab_category == "d_dimer" and kind is None))
