"""Plans: several sheets, several object types, in one run: the plan file, the checks before
the first write, the runner, and plan runs' history."""
