"""Running a suite's cells: expansion into cells, one cell's pipeline (train, measure, record), the
launchers (in process, --jobs workers, shards, Slurm) and the plan of what a run costs."""
