"""Job-level outputs of a scan: the summary tables, the HTML job page and the GeoJSON of findings."""
