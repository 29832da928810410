"""Coding items and def-use facts for the brace languages (JavaScript, TypeScript, Java, C, C++, Go, Rust): one table-driven walker.

Submodules are not imported here: importing one module never loads the rest of the stage.
"""
