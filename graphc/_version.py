"""graphc's version number.

In a module of its own so that any module can read it without importing the package
(``from .. import __version__`` would loop through ``graphc/__init__``)."""
__version__ = "0.1.0"
