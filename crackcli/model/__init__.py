"""Model files and what runs them: backbones, checkpoints (read without running code), checked ONNX files
with their metadata, predictors, export, metrics and the shipped default. Imports ``data`` and ``io``.
"""
