"""regsync.domain."""
