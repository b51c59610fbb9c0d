"""The component's entry point: `weir plugin build` points componentize-py
here. The rules live in pii_mask.py, which runs natively in tests too."""

import weir_plugin
from pii_mask import PiiMask

WitWorld = weir_plugin.export_transformer(PiiMask)
