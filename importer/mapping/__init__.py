"""What the user writes for one sheet: the mapping (`model`), read from YAML (`file`), checked
against the portal (`portal`), drafted from a sheet (`draft`)."""
