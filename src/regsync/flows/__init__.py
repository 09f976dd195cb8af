"""regsync.flows."""
