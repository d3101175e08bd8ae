"""What is kept between runs: the journal, run history and undo, each run's rows for
`show --out`."""
