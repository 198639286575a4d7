"""Where runs come from besides the API: API answers saved as files (JSON, NDJSON)."""
