"""regsync.console."""
