"""Log set-up for every command: readable key=value text by default, one JSON object per line with
FOOTHILLS_LOG_FORMAT=json (python-json-logger), each record carrying the active trace and span ids.

What is logged never holds a secret: no token, password or full email reaches a log call (the RPC
line names a user by id), and tests grep a run's logs for the ones they used.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from foothills_rpc.observability.tracing import current_ids

TEXT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
TEXT_WITH_PID = "%(asctime)s level=%(levelname)s pid=%(process)d logger=%(name)s %(message)s"
FORMATS = ("text", "json")


class _TraceIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id, record.span_id = current_ids()
        return True


def configure(level: str, log_format: str = "text", *, with_pid: bool = False) -> None:
    """Several processes sharing one stderr (`serve --workers`) name their process on each line."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s %(trace_id)s %(span_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}))
        handler.addFilter(_TraceIds())
    else:
        handler.setFormatter(logging.Formatter(TEXT_WITH_PID if with_pid else TEXT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
