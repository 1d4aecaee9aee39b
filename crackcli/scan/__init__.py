"""`crack scan`: the scan API (``crackcli.scan.api``), window scoring (patch and dense), findings and regions,
overlays, reports and the job over many photos.
"""
