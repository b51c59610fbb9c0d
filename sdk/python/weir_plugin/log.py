"""Structured logging through the host, which attributes each record to
the plugin. Natively (in tests) records go to standard error."""

import sys

_host = None


def _write(level, message, fields):
    global _host
    if _host is None:
        try:
            from wit_world.imports import host

            _host = host
        except ImportError:
            _host = False
    pairs = [(str(k), str(v)) for k, v in fields.items()]
    if _host:
        _host.log(getattr(_host.Level, level.upper()), message, pairs)
    else:
        print("[%s] %s %r" % (level, message, pairs), file=sys.stderr)


def debug(message, **fields):
    _write("debug", message, fields)


def info(message, **fields):
    _write("info", message, fields)


def warn(message, **fields):
    _write("warn", message, fields)


def error(message, **fields):
    _write("error", message, fields)
