"""Alerts: findings from the built models, posted once each to an incoming webhook.

`send_alerts` is the one call a build makes after its models; `current_findings` /
`finding_lines` list what it would alert on. Rates read as on the report page
(pipeline.report.format.format_rate).
"""

from pipeline.alerts.findings import Finding, current_findings, finding_lines
from pipeline.alerts.send import send_alerts

__all__ = ["Finding", "current_findings", "finding_lines", "send_alerts"]
