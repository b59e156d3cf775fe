"""A short, human label for a session's device from its User-Agent, such as "Firefox on Linux".

A few ordered patterns cover the browsers and systems people use, plus our SDK and common HTTP
libraries; anything else is "Unknown device". The label is for recognizing one's own sessions,
not for any decision (a User-Agent is whatever the client says).
"""

from __future__ import annotations

import re

# First match wins: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Enclave SDK", re.compile(r"enclave[-_ ]?client", re.I)),
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"\b(Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(Chrome|Chromium|CriOS|HeadlessChrome)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*Safari/|\bSafari/")),
    ("curl", re.compile(r"^curl/", re.I)),
    ("Python", re.compile(r"python|httpx|aiohttp", re.I)),
)
_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("Linux", re.compile(r"Linux|X11")),
)

UNKNOWN = "Unknown device"


def device_label(user_agent: str) -> str:
    """ "Browser on System", or whichever of the two is known, or "Unknown device"."""
    ua = user_agent[:512]
    browser = next((name for name, pattern in _BROWSERS if pattern.search(ua)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(ua)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or UNKNOWN
