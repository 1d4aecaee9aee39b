"""Crack traces and measurements: which pixels are crack inside the windows the classifier flags, their
centre lines, lengths and widths, in pixels and, with a scale, in millimetres."""
