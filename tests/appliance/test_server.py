"""The daemon's log format: the cached timestamp writes exactly what logging's own does."""

from __future__ import annotations

import logging

from appliance.server import _LogFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def test_log_lines_match_the_stock_formatter_across_seconds() -> None:
    ours, stock = _LogFormatter(FORMAT), logging.Formatter(FORMAT)
    for created in (1700000000.0, 1700000000.9995, 1700000001.001, 1700000001.5,
                    1700003600.25, 1700000000.5):  # and back to an earlier second
        record = logging.makeLogRecord({"msg": "POST %s %s", "args": ("/v1/x", 200),
                                        "name": "appliance.access", "levelname": "INFO",
                                        "levelno": logging.INFO})
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        assert ours.format(record) == stock.format(record)
