"""Running a plan: the engine, worker processes, progress, signals, seeds."""
