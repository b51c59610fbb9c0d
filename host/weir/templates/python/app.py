"""The component's entry point (`weir plugin build` builds from here)."""

import weir_plugin
from @@MODULE@@ import @@TYPE@@

WitWorld = weir_plugin.@@EXPORT@@(@@TYPE@@)
