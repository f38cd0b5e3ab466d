"""The built-in compression methods: one module each, imported by the registry.

Modules here must import torch only inside functions (the Snakefile imports
them all to plan a study); see :mod:`compfair.compression`.
"""
