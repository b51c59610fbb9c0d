"""@@NAME@@: upper-cases one text column of every event's after image.

Config: {"column": "name"}.
"""

from weir_plugin import KEEP


class @@TYPE@@:
    def __init__(self, config):
        unknown = set(config) - {"column"}
        if unknown:
            raise ValueError("invalid plugin config: unknown field(s) %s" % ", ".join(sorted(unknown)))
        column = config.get("column")
        if not isinstance(column, str) or not column:
            raise ValueError("invalid plugin config: `column` must name a column")
        self.column = column

    def transform(self, event):
        text = event.after.get(self.column) if event.after else None
        if type(text) is str:
            event.set_after(self.column, text.upper())
        return KEEP
