"""A logging filter that keeps secrets out of our log lines and those of httpx and httpcore.

Settings already refuse the values that made the HTTP stack quote a header in its
errors, and URLs with credentials inside; this is the second line: any record of
these loggers that still contains a known secret, or a URL's user:password@, has it
replaced before any handler sees it.
"""

from __future__ import annotations

import logging
import re

from pipeline.itwin.settings import Secret, Settings

# Filters on a logger apply to records created on that logger only, not its children,
# so every logger the HTTP stack writes to is named.
GUARDED_LOGGERS = (
    "pipeline.itwin",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_USERINFO = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]*@")
REDACTED = "***"


class SecretRedactor(logging.Filter):
    """Replaces registered secrets and URL credentials in a record's message."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def register(self, secret: Secret | str | None) -> None:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value and len(value) >= 4:  # shorter values would redact ordinary words
            self._secrets.add(value)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _USERINFO.sub(REDACTED + "@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            shown = logging.Formatter().formatException(record.exc_info)
            if self.redact(shown) != shown:
                record.exc_info, record.exc_text = None, self.redact(shown)
        return True


REDACTOR = SecretRedactor()


def install_redaction(settings: Settings) -> None:
    """Register the settings' secrets and attach the filter to every guarded logger (once)."""
    REDACTOR.register(settings.access_token)
    REDACTOR.register(settings.client_secret)
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if REDACTOR not in logger.filters:
            logger.addFilter(REDACTOR)
