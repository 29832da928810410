"""Axolotl: the plugin (``codeblock.CodeBlockPlugin``), its config keys and the ``type: codeblock`` prompt strategy.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
