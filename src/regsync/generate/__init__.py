"""The data generator: a province-shaped data set with the dirt real data has.

design.md, "Data that looks like the province's". Public surface: :func:`generate`, :class:`GenerateSummary`,
:class:`DirtRates`, :data:`KINDS`, :data:`TARGETS`, :data:`DIRT_KINDS`.
"""

from regsync.generate.generator import (
    DEFAULT_AS_OF,
    DIRT_KINDS,
    KINDS,
    TARGETS,
    DirtRates,
    GenerateSummary,
    generate,
)

__all__ = ["DEFAULT_AS_OF", "DIRT_KINDS", "KINDS", "TARGETS", "DirtRates", "GenerateSummary", "generate"]
