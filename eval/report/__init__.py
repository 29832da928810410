"""Results files, tables and comparisons between runs.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
