"""The registry client: signing, wire adapter, typed errors."""
