"""What is kept between runs: the journal (per portal and object type) with its batches, rows,
links and each run's rows for `show --out`; the plan journal; where they live."""
