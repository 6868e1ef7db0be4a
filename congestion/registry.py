"""Congestion-control algorithms by name, and user plug-ins.

``create("dcqcn", flavour="paper")`` gives a built-in; ``create("my_cc.py:MyCC")`` loads class
``MyCC`` from a user's file (no rebuild needed: it runs through the Python plug-in path).

A CC spec (``--cc``, ``Scenario.cc``, an entry of an experiment's ``ccs``) is resolved in this
order; the first that applies decides, and an error names the spec and what was tried:

1. a built-in name (``dcqcn``, ``dctcp``, ... and any class passed to :func:`register`);
2. the name of an entry point in group ``softdpu.cc`` (see :data:`ENTRY_POINT_GROUP`): how a
   CC published in another pip package is used by name. softdpu itself publishes its example,
   ``ecn_aimd``. An entry point with the name of a built-in is an error naming both whenever
   that name is asked for (neither silently wins), as are two distributions publishing one name;
3. ``path/to/file.py:ClassName``: a file, loaded as a module of its own (the path is tried
   first, so a file wins over a module of the same spelling);
4. ``package.module:ClassName``: an importable module (``experiments.plugins.ecn_aimd:EcnAimd``),
   the class given as an attribute path (``Outer.Inner`` works, as in entry points).

A name without ``:`` that is neither built-in nor an entry point is refused with the known names
and the closest matches (``difflib``). :func:`available` lists the built-ins and the installed
entry points with where each comes from (``softdpu list``).
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from congestion.api import CongestionControl

#: the entry-point group under which pip packages publish congestion controls
ENTRY_POINT_GROUP = "softdpu.cc"

_REGISTRY: dict[str, type[CongestionControl]] = {}
_builtins_loaded = False
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")


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
    """The built-in (and :func:`register`-ed) names; :func:`available` adds the entry points."""
    _builtins()
    return sorted(_REGISTRY)


# ------------------------------------------------------------------ entry points
def _dist(ep) -> str:
    d = getattr(ep, "dist", None)
    return f"{d.metadata['Name']} {d.version}" if d is not None else "an unknown distribution"


def _describe_ep(ep) -> str:
    return f"entry point '{ep.name} = {ep.value}' (group {ENTRY_POINT_GROUP}, distribution {_dist(ep)})"


def _entry_points() -> dict[str, list]:
    """Entry points of group ``softdpu.cc`` by name (a list: two distributions may publish one
    name). Read on every call, so a package installed while Python runs is seen."""
    out: dict[str, list] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        same = out.setdefault(ep.name, [])
        if not any(e.value == ep.value and _dist(e) == _dist(ep) for e in same):
            same.append(ep)
    return out


def _builtin_where(cls: type) -> str:
    return f"built-in {cls.__module__}:{cls.__qualname__}"


def _load_entry_point(name: str, eps: list) -> type[CongestionControl]:
    if len(eps) > 1:
        raise ValueError(f"cc {name!r} is ambiguous: published by " + " and by ".join(_describe_ep(e) for e in eps)
                         + "; uninstall one, or use its package.module:ClassName")
    ep = eps[0]
    try:
        obj = ep.load()
    except Exception as exc:
        raise ValueError(f"cc {name!r}: {_describe_ep(ep)} does not load: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, CongestionControl)):
        raise ValueError(f"cc {name!r}: {_describe_ep(ep)} gives {obj!r}, not a CongestionControl subclass")
    return obj


# ------------------------------------------------------------------ spec -> class
def _file_module(spec: str, path: str, file: Path):
    modname = f"softdpu_plugin_{file.stem}_{abs(hash(str(file.resolve()))) % 10**8}"
    module = sys.modules.get(modname)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(modname, file)
        if loader_spec is None:
            raise ValueError(f"cc plug-in file {path!r} is not a Python source file (spec {spec!r})")
        module = importlib.util.module_from_spec(loader_spec)
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            raise ValueError(f"cc plug-in file {path!r} does not load: {type(exc).__name__}: {exc}") from exc
        sys.modules[modname] = module
    return module


def _import_module(spec: str, modname: str):
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name is not None and modname.startswith(exc.name) and modname[len(exc.name):][:1] in ("", "."):
            # the module itself (or a package on its path) is missing, not something it imports
            raise ValueError(f"cc plug-in {spec!r}: {modname!r} is neither a file (no such path) nor an importable "
                             f"module ({exc}); a file needs its path ending in .py, a module must be on "
                             f"sys.path (installed, or the current directory)") from exc
        raise ValueError(f"cc plug-in module {modname!r} does not load: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"cc plug-in module {modname!r} does not load: {type(exc).__name__}: {exc}") from exc


def _cc_classes(module) -> list[str]:
    return sorted(k for k, v in vars(module).items()
                  if isinstance(v, type) and issubclass(v, CongestionControl) and v is not CongestionControl)


def _class_from(spec: str, module, clsname: str, where: str) -> type[CongestionControl]:
    obj = module
    for part in clsname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            found = _cc_classes(module)
            raise ValueError(f"cc plug-in {spec!r}: {where} has no {clsname!r}; its CongestionControl classes: "
                             f"{', '.join(found) if found else 'none'}")
    if not (isinstance(obj, type) and issubclass(obj, CongestionControl)):
        raise ValueError(f"cc plug-in {spec!r}: {clsname!r} is not a CongestionControl subclass in {where}")
    return obj


def _unknown(spec: str, eps: dict[str, list]) -> ValueError:
    known = names() + sorted(eps)
    close = difflib.get_close_matches(spec, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    if spec.endswith(".py") or "/" in spec or "\\" in spec or (("." in spec) and _MODULE.match(spec)):
        hint += " (a file or module needs the class too: path/to/file.py:ClassName or package.module:ClassName)"
    installed = ", ".join(sorted(eps)) if eps else f"none installed"
    return ValueError(f"unknown cc {spec!r}: not a built-in name and not an entry point in group "
                      f"{ENTRY_POINT_GROUP}{hint}; built-in: {', '.join(names())}; entry points: {installed}; "
                      f"or path/to/file.py:ClassName, or package.module:ClassName")


def load_class(spec: str) -> type[CongestionControl]:
    """The class a CC spec names (the resolution order is in this module's docstring)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"cc must be a non-empty string (a name, path/to/file.py:ClassName or "
                         f"package.module:ClassName), got {spec!r}")
    _builtins()
    eps = _entry_points()
    if spec in _REGISTRY:
        if spec in eps:
            raise ValueError(f"cc {spec!r} is ambiguous: {_builtin_where(_REGISTRY[spec])} and "
                             + " and ".join(_describe_ep(e) for e in eps[spec])
                             + "; the entry point must be renamed (or its package uninstalled)")
        return _REGISTRY[spec]
    if spec in eps:
        return _load_entry_point(spec, eps[spec])
    if ":" not in spec:
        raise _unknown(spec, eps)
    left, _, clsname = spec.rpartition(":")
    if not left or not clsname:
        raise ValueError(f"cc plug-in {spec!r}: expected path/to/file.py:ClassName or package.module:ClassName")
    file = Path(left)
    if file.is_file():
        return _class_from(spec, _file_module(spec, left, file), clsname, left)
    if left.endswith(".py") or "/" in left or "\\" in left or not _MODULE.match(left):
        raise ValueError(f"cc plug-in file {left!r} does not exist (spec {spec!r}; relative to {Path.cwd()})")
    return _class_from(spec, _import_module(spec, left), clsname, f"module {left}")


def create(spec: str, **params) -> CongestionControl:
    return load_class(spec)(**params)


def label(spec: str) -> str:
    """A short name for a spec, for results folders: the name itself, a file's stem, or a
    module's last component (``experiments.plugins.ecn_aimd:EcnAimd`` -> ``ecn_aimd``)."""
    if ":" not in spec:
        return spec
    left = spec.rpartition(":")[0]
    if left.endswith(".py") or "/" in left or "\\" in left or Path(left).is_file():
        return Path(left).stem
    return left.rpartition(".")[2]


# ------------------------------------------------------------------ listing
@dataclass(frozen=True)
class Available:
    """One usable CC name, as :func:`available` lists it."""
    name: str
    source: str            # "built-in" or "entry point"
    target: str            # module:Class
    distribution: str      # "softdpu 0.1.0" for built-ins, the publishing package for entry points
    summary: str           # the first line of the class's module docstring ("" if none)
    error: str | None      # why it cannot be used (does not load, clash, ambiguous), else None


def _summary(cls: type) -> str:
    doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def available() -> list[Available]:
    """Every name ``--cc NAME`` accepts: the built-ins, then the entry points of group
    ``softdpu.cc`` (each loaded to read its summary; one that does not load, or whose name clashes
    with a built-in, is listed with ``error`` set instead of stopping the listing)."""
    _builtins()
    try:
        own = f"softdpu {importlib.metadata.version('softdpu')}"
    except importlib.metadata.PackageNotFoundError:
        own = "softdpu (not installed)"
    out = [Available(n, "built-in", f"{c.__module__}:{c.__qualname__}", own, _summary(c), None)
           for n, c in sorted(_REGISTRY.items())]
    for name, eps in sorted(_entry_points().items()):
        dist = " and ".join(_dist(e) for e in eps)
        target = " and ".join(e.value for e in eps)
        try:
            cls = load_class(name)
        except ValueError as exc:
            out.append(Available(name, "entry point", target, dist, "", str(exc)))
        else:
            out.append(Available(name, "entry point", target, dist, _summary(cls), None))
    return out
