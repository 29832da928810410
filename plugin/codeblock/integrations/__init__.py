"""Integrations with third-party trainers (one subpackage each, like Axolotl's own ``integrations/<name>/``).

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
