"""Execution side of the harness: sandbox, per-sample verdicts, pass@k, agreement with evalplus.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
