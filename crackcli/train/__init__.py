"""`crack train` and `crack eval`: configuration, data for a run, the loop, losses (CE ... IGMSDA), weight
averaging, multi-process set-up, the run folder with its checkpoint state, evaluation and figures.
"""
