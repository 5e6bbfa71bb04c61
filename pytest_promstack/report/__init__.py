"""Reports built from the run's records."""
