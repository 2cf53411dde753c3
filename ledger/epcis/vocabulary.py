"""The standard vocabulary Chainproof writes and reads in EPCIS: CBV 2.0 business steps and dispositions, and units
as UN/ECE Recommendation 20 codes."""

from __future__ import annotations

from ledger.errors import ValidationError

BIZ_STEPS = frozenset(
    {
        "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning", "creating_class_instance",
        "cycle_counting", "decommissioning", "departing", "destroying", "disassembling", "dispensing", "encoding",
        "entering_exiting", "holding", "inspecting", "installing", "killing", "loading", "other", "packing",
        "picking", "receiving", "removing", "repackaging", "repairing", "replacing", "reserving", "retail_selling",
        "shipping", "staging_outbound", "stock_taking", "stocking", "storing", "transporting", "unloading",
        "unpacking", "void_shipping", "sensor_reporting", "sampling",
    }
)  # fmt: skip
"""CBV 2.0 section 7.1 (the bare-string form EPCIS 2.0 JSON-LD uses)."""

DISPOSITIONS = frozenset(
    {
        "active", "container_closed", "damaged", "destroyed", "dispensed", "disposed", "encoded", "expired",
        "in_progress", "in_transit", "inactive", "no_pedigree_match", "non_sellable_other", "partially_dispensed",
        "recalled", "reserved", "retail_sold", "returned", "sellable_accessible", "sellable_not_accessible",
        "stolen", "unknown", "available", "completeness_verified", "completeness_inferred", "conformant",
        "container_open", "mismatch_instance", "mismatch_class", "mismatch_quantity", "needs_replacement",
        "non_conformant", "unavailable",
    }
)  # fmt: skip
"""CBV 2.0 section 7.2."""

UNIT_CODES: dict[str, str] = {
    "kg": "KGM", "kgs": "KGM", "kilogram": "KGM", "kilograms": "KGM",
    "g": "GRM", "gram": "GRM", "grams": "GRM",
    "t": "TNE", "tonne": "TNE", "tonnes": "TNE",
    "lb": "LBR", "lbs": "LBR", "pound": "LBR", "pounds": "LBR",
    "oz": "ONZ", "ounce": "ONZ", "ounces": "ONZ",
    "l": "LTR", "litre": "LTR", "litres": "LTR", "liter": "LTR", "liters": "LTR",
    "ml": "MLT", "millilitre": "MLT", "milliliter": "MLT",
    "m3": "MTQ", "cubic metre": "MTQ",
    "m": "MTR", "metre": "MTR", "meter": "MTR",
    "m2": "MTK", "square metre": "MTK",
    "pcs": "H87", "pc": "H87", "piece": "H87", "pieces": "H87",
    "each": "EA", "ea": "EA",
    "unit": "C62", "units": "C62",
    "dozen": "DZN",
    "box": "BX", "boxes": "BX",
    "carton": "CT", "cartons": "CT",
    "case": "CS", "cases": "CS",
    "pack": "PK", "packs": "PK",
    "bag": "BG", "bags": "BG",
    "bottle": "BO", "bottles": "BO",
}  # fmt: skip
"""Units as merchants write them, and their UN/ECE Recommendation 20 codes. A unit not listed is never guessed."""

UNITS_OF_CODE: dict[str, str] = {}
for _unit, _code in UNIT_CODES.items():
    UNITS_OF_CODE.setdefault(_code, _unit)  # the first spelling listed is the one an import writes


def unit_code(unit: str) -> str:
    """The UN/ECE Rec 20 code of a unit; a unit the table does not know is refused, never guessed."""
    code = UNIT_CODES.get(unit.strip().lower())
    if code is None:
        known = ", ".join(sorted({u for u in UNIT_CODES if len(u) <= 5}))
        raise ValidationError(
            f"unit {unit!r} has no UN/ECE Recommendation 20 code in Chainproof's table ({known}): "
            "EPCIS needs one, and it is never guessed"
        )
    return code


__all__ = ["BIZ_STEPS", "DISPOSITIONS", "UNITS_OF_CODE", "UNIT_CODES", "unit_code"]
