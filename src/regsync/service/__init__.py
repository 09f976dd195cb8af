"""regsync.service."""
