"""Congestion-control algorithms by name, and user plug-ins by file path.

``create("dcqcn", flavour="paper")`` gives a built-in; ``create("my_cc.py:MyCC")`` loads class
``MyCC`` from a user's file (no rebuild needed: it runs through the Python plug-in path).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from congestion.api import CongestionControl

_REGISTRY: dict[str, type[CongestionControl]] = {}
_builtins_loaded = False


def register(cls: type[CongestionControl]) -> type[CongestionControl]:
    """Class decorator: make ``cls`` available by ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, CongestionControl)):
        raise TypeError(f"{cls!r} is not a CongestionControl subclass")
    _REGISTRY[cls.name] = cls
    return cls


def _builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from congestion.dcqcn import Dcqcn
    from congestion.dctcp import Dctcp
    from congestion.hpcc import Hpcc
    from congestion.none import NoCC
    from congestion.nscc import Nscc
    from congestion.swift import Swift
    from congestion.timely import Timely
    for cls in (NoCC, Dcqcn, Dctcp, Timely, Hpcc, Swift, Nscc):
        _REGISTRY.setdefault(cls.name, cls)


def names() -> list[str]:
    _builtins()
    return sorted(_REGISTRY)


def load_class(spec: str) -> type[CongestionControl]:
    """A registered name, or ``path/to/file.py:ClassName``."""
    _builtins()
    if ":" in spec:
        path, _, clsname = spec.rpartition(":")
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"cc plug-in file {path!r} does not exist")
        modname = f"softdpu_plugin_{file.stem}_{abs(hash(str(file.resolve()))) % 10**8}"
        module = sys.modules.get(modname)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(modname, file)
            module = importlib.util.module_from_spec(loader_spec)
            try:
                loader_spec.loader.exec_module(module)
            except Exception as exc:
                raise ValueError(f"cc plug-in file {path!r} does not load: {type(exc).__name__}: {exc}") from exc
            sys.modules[modname] = module
        cls = getattr(module, clsname, None)
        if not (isinstance(cls, type) and issubclass(cls, CongestionControl)):
            raise ValueError(f"cc plug-in {spec!r}: {clsname!r} is not a CongestionControl subclass in {path}")
        return cls
    if spec not in _REGISTRY:
        raise ValueError(f"unknown cc {spec!r}; known: {', '.join(names())} (or path/to/file.py:ClassName)")
    return _REGISTRY[spec]


def create(spec: str, **params) -> CongestionControl:
    return load_class(spec)(**params)
