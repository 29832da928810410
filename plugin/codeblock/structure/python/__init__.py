"""Coding items and def-use facts for Python.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
