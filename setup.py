"""The build's one step beyond setuptools' own: compile the gettext catalogs (issue 15, point 1).

``pip install`` (editable or not) runs ``build_py``, which compiles every
``src/regsync/locale/<lang>/LC_MESSAGES/regsync.po`` into the ``.mo`` beside it with Babel, before the package's
files are collected (``package-data`` takes the ``.mo`` files). Everything else is in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    """``build_py`` that first compiles the message catalogs (Babel's ``write_mo``, fuzzy entries left out)."""

    def run(self) -> None:
        from babel.messages.mofile import write_mo  # a build requirement (pyproject.toml [build-system])
        from babel.messages.pofile import read_po

        for po in sorted(Path(__file__).parent.glob("src/regsync/locale/*/LC_MESSAGES/*.po")):
            with po.open("rb") as fp:
                catalog = read_po(fp, locale=po.parent.parent.name, domain=po.stem)
            with po.with_suffix(".mo").open("wb") as out:
                write_mo(out, catalog, use_fuzzy=False)
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogs})
