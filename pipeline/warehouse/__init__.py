"""The DuckDB warehouse: loading, bookkeeping, models and exports."""

# The warehouse file's name in the data directory; kept here, light to import, for the CLI.
WAREHOUSE_FILE = "warehouse.duckdb"
