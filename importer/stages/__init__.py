"""The stages of one run, a file each, and `run_import`, which runs them in order: read,
validate, resolve references, prepare, reconcile with the journal, decide, send, links, write
results."""
