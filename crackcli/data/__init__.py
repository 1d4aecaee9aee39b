"""Photos to patches and patches to batches: tiling geometry, the one preprocessing resize, `crack prepare`,
labelled folders and sampling, augmentation and painting, synthetic photos. Imports ``crackcli.io`` only.
"""
