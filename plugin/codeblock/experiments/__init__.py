"""``codeblock experiment``: one YAML -> prepare, train and evaluate every arm and seed, then a report.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
