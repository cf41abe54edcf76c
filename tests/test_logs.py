"""Log masking (issue 8, item 5): every log line, tracebacks and stack info included, whichever
handler prints it (the app's, python-wechaty's own, a test's caplog)."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from sqlalchemy import text

from bot import pii
from bot.cli import setup_logging
from bot.pii import find_numbers

log = logging.getLogger("bot.tests.logs")


def leaks(written: str) -> list[pii.Found]:
    """Personal numbers the detector can still find in log output."""
    return find_numbers(written)


async def _sql_error(bot) -> Exception:
    """A real driver error whose message carries the statement's parameters."""
    try:
        async with bot.session() as s:
            await s.execute(text("SELECT phone FROM no_such_table WHERE phone = :p"),
                            {"p": "13905791234"})
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError("the statement should have failed")


async def test_a_driver_error_with_a_mobile_is_masked_in_every_log_line(
        bot, caplog: pytest.LogCaptureFixture):
    exc = await _sql_error(bot)
    assert "13905791234" in str(exc)  # the driver really put the parameter in the message

    def log_it() -> None:
        try:
            raise exc
        except Exception:
            log.exception("query for %s failed", "13905791234")
        log.error("query failed: %s", exc)
        log.warning("lookup of 身份证11010519491231002X", stack_info=True)

    with caplog.at_level(logging.INFO):
        log_it()
    assert "Traceback" in caplog.text and "139****1234" in caplog.text
    assert leaks(caplog.text) == []
    assert all(leaks(m) == [] for m in caplog.messages)
    stream = io.StringIO()
    setup_logging("INFO", stream)
    try:
        log_it()
    finally:
        logging.getLogger().handlers.clear()
    written = stream.getvalue()
    assert "Traceback" in written and "139****1234" in written
    assert "110105********002X" in written
    assert leaks(written) == []


def test_the_masking_formatter_masks_tracebacks_of_records_made_anywhere():
    """A record made without the app's record factory (another library's makeRecord) is still
    masked by the formatter every app handler has, traceback and stack included."""
    try:
        raise ValueError("bad mobile 139 0579 1234")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "user %s", ("13905791234",),
                               exc_info, sinfo="Stack (most recent call last):\n 13905791234")
    line = pii.MaskingFormatter("%(levelname)s %(message)s").format(record)
    assert line.startswith("ERROR user 139****1234\nTraceback")
    assert "ValueError: bad mobile 139****1234" in line
    assert leaks(line) == []


def test_the_masking_filter_masks_the_traceback_too():
    try:
        raise RuntimeError("id 11010519491231002X")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, exc_info)
    pii.MaskingFilter().filter(record)
    assert record.exc_text is not None and "110105********002X" in record.exc_text
    assert leaks(logging.Formatter().format(record)) == []


def test_records_keep_their_args_when_masking_them_one_by_one_suffices():
    """uvicorn's access formatter reads record.args as a tuple: masking keeps the tuple."""
    pii.mask_log_records()
    logger = logging.getLogger("tests.logs.access")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger.addHandler(Keep())
    logger.propagate = False
    try:
        logger.warning('%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", "/api/x?m=13905791234",
                       "1.1", 200)
    finally:
        logger.handlers.clear()
        logger.propagate = True
    [record] = seen
    assert isinstance(record.args, tuple) and record.args[2] == "/api/x?m=139****1234"
    assert record.getMessage() == '1.2.3.4 - "GET /api/x?m=139****1234 HTTP/1.1" 200'


def test_python_wechaty_loggers_print_masked_lines(capsys: pytest.CaptureFixture[str]):
    """python-wechaty's get_logger installs its own handler that does not propagate."""
    from wechaty_puppet.logger import get_logger

    setup_logging("INFO", io.StringIO())
    try:
        wlog = get_logger("WechatyMaskTest")
        try:
            raise ConnectionError("room say 13905791234 failed")
        except ConnectionError:
            wlog.exception("say failed for %s", "١٣٩٠٥٧٩١٢٣٤")
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    assert "ConnectionError: room say 139****1234 failed" in err
    assert leaks(err) == []
    pii.mask_log_handlers()
    assert isinstance(wlog.handlers[0].formatter, pii.MaskingFormatter)
