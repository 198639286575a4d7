"""The human-facing reports: the self-contained HTML page and the CLI summary."""
