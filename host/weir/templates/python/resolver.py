"""@@NAME@@: settles a conflict by a version column: the higher version
wins, a tie keeps the local row, an incoming delete wins.

Config: {"column": "version"}.
"""

from weir_plugin import KEEP_LOCAL, TAKE_INCOMING


class @@TYPE@@:
    def __init__(self, config):
        unknown = set(config) - {"column"}
        if unknown:
            raise ValueError("invalid plugin config: unknown field(s) %s" % ", ".join(sorted(unknown)))
        column = config.get("column")
        if not isinstance(column, str) or not column:
            raise ValueError("invalid plugin config: `column` must name a column")
        self.column = column

    def resolve(self, conflict):
        incoming = conflict.incoming.after
        if incoming is None:
            return TAKE_INCOMING
        local, theirs = conflict.local.get(self.column), incoming.get(self.column)
        if type(local) is not int or type(theirs) is not int:
            raise ValueError("column `%s` is not an integer in both versions" % self.column)
        return TAKE_INCOMING if theirs > local else KEEP_LOCAL
