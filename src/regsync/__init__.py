"""regsync: keeps a province's volunteer platform in step with the national volunteer registry."""

__version__ = "0.1.0"
