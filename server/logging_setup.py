"""Structured (one JSON object per line) logs."""
from __future__ import annotations

import json
import logging
import sys
import time

import orjson

_FIELDS = ("method", "path", "status", "ms", "code", "request_id", "community_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (orjson; the second's text is made once per second, not per line:
    the access log was 6 % of the vote path's server time)."""

    _second: tuple[int, str] = (-1, "")   # (second, its text), replaced as one (threads log too)

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{cached[1]}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self._timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = record.__dict__
        for key in _FIELDS:
            if key in fields:
                entry[key] = fields[key]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:
            return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Neither format shows a line's source file, thread or process: do not look them up for every line
    # (the logging HOWTO's "Optimization"; a fifth of the access log's cost on the vote path).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
