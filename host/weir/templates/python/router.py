"""@@NAME@@: routes every event to `<prefix>.<table>`.

Config: {"prefix": "lake"}.
"""


class @@TYPE@@:
    def __init__(self, config):
        unknown = set(config) - {"prefix"}
        if unknown:
            raise ValueError("invalid plugin config: unknown field(s) %s" % ", ".join(sorted(unknown)))
        prefix = config.get("prefix")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("invalid plugin config: `prefix` must not be empty")
        self.prefix = prefix

    def route(self, event):
        """The destinations of one event; an empty list drops it."""
        return ["%s.%s" % (self.prefix, event.table)]
