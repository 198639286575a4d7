"""POST one `{"text": ...}` message to an incoming webhook (Slack and Teams accept this shape).

The URL is a secret: it is never logged, returned or put in an error. httpx's client
logs every request line with its URL at INFO, so messages go straight to a transport
(no client, no request log), and failures are reported by kind, never by the
exception text.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

import httpx

DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "itwin-runs-alerts"


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    status: str
    """What happened, for the alert log: "HTTP 200", "HTTP 500", "no answer (ConnectError)"."""
    receiver_down: bool = False
    """The receiver cannot take messages now (no answer, 429, 5xx): try the rest next build."""


class WebhookUrlError(ValueError):
    """The configured webhook URL is not an http(s) URL (the message never contains it)."""


def checked_url(url: str) -> httpx.URL:
    """The URL parsed, or WebhookUrlError naming the setting without showing the value."""
    hint = "set ITWIN_RUNS_ALERT_WEBHOOK_URL to the webhook's full https:// address"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise WebhookUrlError(f"the alert webhook URL is not a valid URL; {hint}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise WebhookUrlError(f"the alert webhook URL is not an http(s) URL; {hint}")
    return parsed


def webhook_payload(text: str) -> dict[str, str]:
    """The message body; <, > and & escaped as Slack asks, so an error code sent by the API
    cannot become a mention (<!channel>) or a link in the channel."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {"text": escaped}


def make_transport(url: httpx.URL) -> httpx.BaseTransport:
    """A transport honouring the usual proxy variables, as an httpx client would."""
    proxies = urllib.request.getproxies()
    proxy = None if urllib.request.proxy_bypass(url.host) else proxies.get(url.scheme)
    return httpx.HTTPTransport(proxy=proxy, retries=0)


def post_text(
    transport: httpx.BaseTransport,
    url: httpx.URL,
    text: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Delivery:
    """One POST, one outcome; never raises for what the network or receiver does."""
    request = httpx.Request(
        "POST",
        url,
        json=webhook_payload(text),
        headers={"User-Agent": USER_AGENT},
        extensions={"timeout": httpx.Timeout(timeout_s).as_dict()},
    )
    try:
        response = transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
    except httpx.TimeoutException:
        return Delivery(False, f"no answer within {timeout_s:g} s", receiver_down=True)
    except httpx.HTTPError as exc:
        return Delivery(False, f"no answer ({type(exc).__name__})", receiver_down=True)
    except Exception as exc:  # a failed alert must never fail the build
        return Delivery(False, f"not sent ({type(exc).__name__})", receiver_down=True)
    return _outcome(response)


def _outcome(response: httpx.Response) -> Delivery:
    code = response.status_code
    if 200 <= code < 300:
        return Delivery(True, f"HTTP {code}")
    # A 4xx other than 429 is about this message; the next one may still go through.
    down = code == 429 or code >= 500
    return Delivery(False, f"HTTP {code}", receiver_down=down)
