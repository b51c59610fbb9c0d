"""Write Weir plugins in Python.

A plugin is a plain class built from its config, plus one export line::

    import weir_plugin
    from weir_plugin import KEEP

    class Shout:
        def __init__(self, config):
            self.column = config.get("column", "name")

        def transform(self, event):
            name = event.after and event.after.get(self.column)
            if type(name) is str:
                event.set_after(self.column, name.upper())
            return KEEP

    WitWorld = weir_plugin.export_transformer(Shout)

A router's ``route(event)`` returns destination names
(``export_router``); a resolver's ``resolve(conflict)`` returns
``KEEP_LOCAL``, ``TAKE_INCOMING``, ``Merged(row)`` or ``Review(reason)``
(``export_resolver``).

``weir plugin build`` turns the project into a component with
componentize-py; :mod:`weir_plugin.testing` runs the same class natively.
"""

from .event import (
    DROP,
    IMAGES,
    KEEP,
    KEEP_LOCAL,
    TAKE_INCOMING,
    Conflict,
    Event,
    Fail,
    Merged,
    Outcome,
    Replace,
    Resolution,
    Review,
    Row,
    Source,
    VersionMeta,
)
from .wire import (
    UNCHANGED,
    WIRE_VERSION,
    Date,
    Decimal,
    Json,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    WireError,
    decode_batch,
    encode_batch,
)

__version__ = "0.1.0"
CONTRACT = "weir:plugin@0.1.0"


def export_transformer(plugin_type):
    """The ``WitWorld`` class of a transformer component; see
    :func:`weir_plugin._export.export_transformer`."""
    from ._export import export_transformer as export

    return export(plugin_type)


def export_router(plugin_type):
    """The ``WitWorld`` class of a router component; see
    :func:`weir_plugin._export.export_router`."""
    from ._export import export_router as export

    return export(plugin_type)


def export_resolver(plugin_type):
    """The ``WitWorld`` class of a resolver component; see
    :func:`weir_plugin._export.export_resolver`."""
    from ._export import export_resolver as export

    return export(plugin_type)
