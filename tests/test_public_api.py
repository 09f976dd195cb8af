"""The public surface is listed in one place, complete and sorted (as httpx does)."""

import regsync


def test_public_names_are_sorted_and_importable() -> None:
    assert regsync.__all__ == sorted(regsync.__all__)
    for name in regsync.__all__:
        assert getattr(regsync, name) is not None
        assert getattr(regsync, name).__doc__, name
