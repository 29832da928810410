"""The package version, in a module of its own so that any module can read it without importing ``codeblock``'s
facade (which lazily reaches the Axolotl plugin and would close an import cycle)."""

__version__ = "0.1.0"
