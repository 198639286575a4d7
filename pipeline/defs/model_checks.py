"""Checks on the report models, one step for all of them.

No `from __future__ import annotations` here: Dagster reads the context's annotation as
a class to tell a check's context from an op's.
"""

from collections.abc import Iterator

import dagster as dg

from pipeline.defs.resources import WarehouseResource
from pipeline.warehouse import quality
from pipeline.warehouse.models import report_models


def rates_in_range_check() -> dg.AssetChecksDefinition:
    """`rates_within_0_1` on every report model, run as one step."""
    specs = [dg.AssetCheckSpec("rates_within_0_1", asset=m) for m in report_models()]

    @dg.multi_asset_check(specs=specs, can_subset=True, name="rates_within_0_1")
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        models = sorted(key.asset_key.to_user_string() for key in context.selected_asset_check_keys)
        with warehouse.get_connection() as con:
            found = {model: quality.rates_out_of_range(con, model) for model in models}
        for model, bad in found.items():
            yield dg.AssetCheckResult(
                asset_key=model,
                check_name="rates_within_0_1",
                passed=bad == 0,
                metadata={"rows_out_of_range": bad},
            )

    return _check
