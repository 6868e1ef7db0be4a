"""Test set-up: in a source checkout (editable install), rebuild the C extension if a C file
changed, before anything imports dataplane._native (a loaded .so cannot be reloaded)."""
import os
from pathlib import Path

import dataplane

_pkg = Path(dataplane.__file__).resolve().parent
if not os.environ.get("SOFTDPU_NO_REBUILD") and (_pkg.parent / "native" / "softdpu.h").exists():
    from dataplane.build import rebuild_inplace
    rebuild_inplace()
