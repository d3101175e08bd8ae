"""The spreadsheet side: reading CSV and Excel as text, and writing results workbooks."""
