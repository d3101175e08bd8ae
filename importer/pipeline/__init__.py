"""The stages of a run: mapping, portal check, validation, references, payload, plan, upload,
links; and plans of several steps."""
