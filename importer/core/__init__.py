"""The words every layer speaks: the errors, the row outcomes and issues, the prepared row,
HubSpot's API facts, text columns and signals. Imports nothing of ours above it."""
