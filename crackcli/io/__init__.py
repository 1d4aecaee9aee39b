"""Bottom layer: files and the machine. Image reading and atomic writing, input collection, run folders,
Ctrl-C handling, progress events and system facts. Imports nothing else of crackcli but ``crackcli.errors``.
"""
