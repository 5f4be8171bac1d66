"""The privacy scan every test runs under (``tests/conftest.py``): logging at DEBUG for every
logger (the function's and every library's: urllib3, requests, redis, pika, …), and at the end of
the test a check of every captured log line, every handler answer and every redelivery message.

It fails the test when any of them holds
- a secret in use during the test: the value of any environment variable whose name says SECRET,
  TOKEN or PASSWORD, the password and such query parameters (``?token=…``) of a URL in any
  environment variable, and the credentials of the invocation's context;
- an unmasked mainland mobile number. Log lines may hold none at all. An answer may hold only
  the numbers it returns as ``SecretNo`` (the privacy number is the answer's purpose).

Long hexadecimal runs (record keys, hashes, nonces) are skipped before matching numbers: a digit
run inside a hash is not a phone number; so are the examples the function's own messages give
(``e.g. PhoneNoA=13900000001``), which are the same in every answer.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any

from axn_bind.models import RULES

MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9A-Za-z])")
_SKIPPED = re.compile(
    "|".join(
        [r"[0-9a-fA-F]{32,}"]
        + [re.escape(f"{name}={example}") for name, (_, example) in RULES.items()]
        + [re.escape(f"PhoneNoX={RULES['PhoneNoX'][1]}")]
    )
)
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD", re.IGNORECASE)
# In a URL: the password of user:password@, and the value of a query parameter named as above.
_URL_PASSWORD = re.compile(r"://[^\s/@:,]*:([^\s/@,]+)@")
_URL_PARAMETER = re.compile(r"[?&]([^=&\s,#]+)=([^&\s,#]+)")
_SECRET_NO = re.compile(r'\\*"SecretNo\\*"\s*:\s*\\*"(\d+)')


class PrivacyScan(logging.Handler):
    """Collects what a test's invocations said and wrote; :meth:`problems` judges it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []  # (logger name, message)
        self.answers: list[str] = []
        self.secrets: set[str] = set()
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a library's malformed record: keep its template and arguments
            text = f"{record.msg} {record.args}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]}"
        with self._lock:
            self.lines.append((record.name, text))

    def note_invocation(self, context: Any) -> None:
        """Remember the secrets an invocation could see: its environment and its context."""
        found = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 6}
        for value in os.environ.values():
            if "://" in value:
                found.update(_URL_PASSWORD.findall(value))
                found.update(v for k, v in _URL_PARAMETER.findall(value) if _SECRET_NAME.search(k))
        found = {v for v in found if len(v) >= 6}
        creds = getattr(context, "credentials", None)
        for name in ("access_key_secret", "security_token", "accessKeySecret", "securityToken"):
            value = getattr(creds, name, None)
            if isinstance(value, str) and len(value) >= 6:
                found.add(value)
        with self._lock:
            self.secrets |= found

    def note_answer(self, answer: Any) -> None:
        if isinstance(answer, dict) and isinstance(answer.get("body"), str):
            text = answer["body"] + json.dumps(answer.get("headers"), default=str)
        else:
            text = json.dumps(answer, ensure_ascii=False, default=str)
        with self._lock:
            self.answers.append(text)

    def problems(self) -> list[str]:
        found = []
        for name, line in self.lines:
            for secret in self.secrets:
                if secret in line:
                    found.append(f"log line of {name} holds a secret: {line[:300]}")
            numbers = MOBILE.findall(_SKIPPED.sub("", line))
            if numbers:
                found.append(f"log line of {name} holds {numbers}: {line[:300]}")
        for text in self.answers:
            for secret in self.secrets:
                if secret in text:
                    found.append(f"an answer holds a secret: {text[:300]}")
            allowed = set(_SECRET_NO.findall(text))
            numbers = [n for n in MOBILE.findall(_SKIPPED.sub("", text)) if n not in allowed]
            if numbers:
                found.append(f"an answer holds {numbers}: {text[:300]}")
        return found
