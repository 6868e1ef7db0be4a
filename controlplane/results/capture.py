"""Packet capture from the control plane: which points record, into which pcap files.

A :class:`CaptureSpec` names capture points and limits; :meth:`CaptureSpec.attach` opens the
sessions on a built network (the data plane writes the files itself, no Python call per packet)
and :meth:`CaptureSpec.close` finishes them.

Points (``points``, comma-separated in the CLI):
  ``all``       every port, as it transmits (a packet appears once per hop)
  ``hosts``     every DPU port, both directions (what each NIC sends and receives)
  ``switches``  every switch port, as it transmits
  ``h3``        the DPU port of host h3, both directions
  ``sw0->h0``   one port by name (``softdpu`` port names), as it transmits
  ``17``        one port by id, as it transmits
``dir=tx|rx|both`` overrides the direction of every point. ``qp=N`` keeps the packets of the
QP pair of QP N; ``from_us``/``to_us`` a time window; ``max`` a packet count; ``snaplen`` bytes
per packet (1 to 262144); ``split=1`` (a boolean: 1/0, true/false, yes/no, on/off) writes one
file per point (at most 8) instead of one merged file. ``from_us``/``to_us`` are microseconds
(decimals allowed, or a unit: ``from_us=500ns``), converted exactly to picoseconds.
:class:`CaptureFilter` declares these keys (type, bounds, default, meaning); a bad value is refused
naming the key as typed (``--pcap-filter snaplen must be ...``), an unknown key with the closest.

CLI: ``softdpu run incast --pcap out.pcap --pcap-filter "points=h0,h1 snaplen=128 max=10000"``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, WithJsonSchema, model_validator

from controlplane.config.schema import Strict
from dataplane.sim import MAX_CAPTURES

MAX_SNAPLEN = 262144                     # libpcap's MAXIMUM_SNAPLEN (native/wire.c checks the same range)
MIN_SNAPLEN = 14                         # an Ethernet header
MAX_QP = 2**32 - 2                       # QP ids are 32-bit; 2^32 - 1 means "none" in the data plane
END_PS = 2**63 - 1                       # the open end of the time window


def _name(key: str) -> str:
    return f"--pcap-filter {key}"


def _text(x: Any) -> str:
    """A value as the command line would give it (numbers from Python are taken as typed)."""
    if isinstance(x, bool):
        raise ValueError("must be a number, got a boolean")
    return x if isinstance(x, str) else repr(x)


def _count(key: str, lo: int, hi: int, unit: str = "", why: str = ""):
    def check(x: Any) -> int:
        from controlplane.config.values import parse_int
        if isinstance(x, bool):
            raise ValueError(f"{_name(key)} must be an integer, got {x!r}")
        v = parse_int(_name(key), _text(x))
        if v < lo:
            raise ValueError(f"{_name(key)} must be >= {lo}{unit}{why}, got {_text(x)}")
        if v > hi:
            raise ValueError(f"{_name(key)} must be <= {hi}{unit}, got {_text(x)}")
        return v
    return check


def _time_us(key: str):
    """Microseconds (a number, or text with a unit such as 500ns), exactly in ps, in [0, 2^63)."""
    def check(x: Any) -> int:
        from controlplane.config.units import parse_quantity
        if isinstance(x, bool) or not isinstance(x, (str, Real)):
            raise ValueError(f"{_name(key)} must be a time in us (or with a unit: 500ns), got {x!r}")
        if isinstance(x, Real) and not math.isfinite(float(x)):
            raise ValueError(f"{_name(key)}: expected a finite time, got {x!r}")
        t = _text(x).strip()
        try:
            ps = parse_quantity(t if t[-1:].isalpha() else t + "us", "time")
        except ValueError as e:
            raise ValueError(f"{_name(key)}: {e}") from None
        if not 0 <= ps <= END_PS:
            raise ValueError(f"{_name(key)} must be >= 0 and < 2**63 ps, got {t}")
        return ps
    return check


def _points(x: Any) -> list[str]:
    pts = x.split(",") if isinstance(x, str) else x
    if not isinstance(pts, (list, tuple)) or not all(isinstance(p, str) for p in pts):
        raise ValueError(f"{_name('points')} must be names separated by commas, got {x!r}")
    if not pts or any(not p for p in pts):
        raise ValueError(f"{_name('points')}: empty point in {x!r} (points=h0,h1 or hosts, switches, all)")
    return list(pts)


def _direction(x: Any) -> str:
    if x not in ("tx", "rx", "both"):
        raise ValueError(f"{_name('dir')} must be tx, rx or both, got {x!r}")
    return x


def _split(x: Any) -> bool:
    from controlplane.config.values import parse_bool
    if isinstance(x, bool):
        return x
    return parse_bool(_name("split"), x if isinstance(x, str) else repr(x))


def _key(check, schema: dict):
    return Annotated[Any, BeforeValidator(check), WithJsonSchema(schema)]


class CaptureFilter(Strict):
    """The ``--pcap-filter`` keys (aliases: as typed on the command line; fields: CaptureSpec's)."""
    points: _key(_points, {"type": "string", "description": "capture points, comma-separated: hosts, switches, "
                                                            "all, a host (h3), a port name (sw0->h0) or id"}) \
        = Field(["hosts"], alias="points")
    direction: _key(_direction, {"enum": ["tx", "rx", "both"], "description": "direction at every point (default: "
                                 "both at a host, tx at a switch port)"}) | None = Field(None, alias="dir")
    qp: _key(_count("qp", 0, MAX_QP), {"type": "integer", "minimum": 0, "maximum": MAX_QP,
                                       "description": "only the packets of this QP's pair"}) | None \
        = Field(None, alias="qp")
    from_ps: _key(_time_us("from_us"), {"type": ["number", "string"], "description": "window start, us (or with "
                                        "a unit), exact in ps"}) = Field(0, alias="from_us")
    to_ps: _key(_time_us("to_us"), {"type": ["number", "string"], "description": "window end, us (or with a "
                                    "unit), exact in ps; after from_us"}) = Field(END_PS, alias="to_us")
    max_packets: _key(_count("max", 0, 2**64 - 1), {"type": "integer", "minimum": 0, "description": "packets "
                                                    "per file at most (0: no limit)"}) = Field(0, alias="max")
    snaplen: _key(_count("snaplen", MIN_SNAPLEN, MAX_SNAPLEN, " bytes", " (an Ethernet header)"),
                  {"type": "integer", "minimum": MIN_SNAPLEN, "maximum": MAX_SNAPLEN,
                   "description": "bytes kept per packet"}) = Field(65535, alias="snaplen")
    split: _key(_split, {"type": "boolean", "description": "one file per point (at most 8) instead of one"}) \
        = Field(False, alias="split")

    @model_validator(mode="after")
    def _window(self):
        if self.to_ps <= self.from_ps:
            raise ValueError(f"--pcap-filter: from_us ({self.from_ps / 1e6:g}) must be < to_us ({self.to_ps / 1e6:g})")
        return self

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys as typed, in the order the help lists them."""
        return tuple(f.alias for f in cls.model_fields.values())

    @classmethod
    def check(cls, given: dict) -> CaptureFilter:
        """``given`` ({key as typed: value}) validated; a UsageError names each bad key as typed."""
        from controlplane.config.values import UsageError, closest
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            lines = []
            for e in exc.errors():
                key = str(e["loc"][0]) if e["loc"] else ""
                if e["type"] == "extra_forbidden":
                    near = closest(key, cls.keys())
                    lines.append(f"--pcap-filter: unknown key {key!r}" + (f" (did you mean {near[0]}?)" if near else "")
                                 + f"; known: {', '.join(cls.keys())}")
                    continue
                msg = str(e.get("ctx", {}).get("error", e["msg"])).strip()
                lines.append(msg if msg.startswith("--pcap-filter") else f"{_name(key)}: {msg}")
            raise UsageError("\n".join(lines)) from None


@dataclass
class CaptureSpec:
    path: str
    points: list[str] = field(default_factory=lambda: ["hosts"])
    direction: str | None = None          # tx, rx, both; None = per point kind
    qp: int | None = None
    from_ps: int = 0
    to_ps: int = 2**63 - 1
    max_packets: int = 0
    snaplen: int = 65535
    split: bool = False
    sessions: dict = field(default_factory=dict, repr=False)

    #: the --pcap-filter keys, in the order the help lists them
    FILTER_KEYS = ("points", "dir", "qp", "from_us", "to_us", "max", "snaplen", "split")
    MAX_SNAPLEN = MAX_SNAPLEN

    @classmethod
    def parse(cls, path: str, text: str | None) -> CaptureSpec:
        """``--pcap-filter`` text: ``key=value`` items separated by spaces or ';', each value
        checked by :class:`CaptureFilter` (a UsageError naming the key as typed), so a bad filter
        fails before the run."""
        from controlplane.config.values import UsageError
        given: dict[str, str] = {}
        for item in (text or "").replace(";", " ").split():
            k, eq, v = item.partition("=")
            if not eq or not k:
                raise UsageError(f"--pcap-filter: expected key=value, got {item!r}")
            if k in given:
                raise UsageError(f"--pcap-filter: {k} given twice")
            if not v and k in CaptureFilter.keys():
                raise UsageError(f"--pcap-filter: {k} needs a value ({k}=...)")
            given[k] = v
        f = CaptureFilter.check(given)
        return cls(path=str(path), **f.model_dump())

    def for_variant(self, name: str, many: bool) -> CaptureSpec:
        """The same capture into ``out-<variant>.pcap`` when an experiment runs several variants."""
        if not many:
            return self
        p = Path(self.path)
        return CaptureSpec(str(p.with_name(f"{p.stem}-{name}{p.suffix or '.pcap'}")), list(self.points),
                           self.direction, self.qp, self.from_ps, self.to_ps, self.max_packets, self.snaplen,
                           self.split)

    def resolve(self, net) -> list[tuple[str, int, bool, bool]]:
        """(point name, port, tx, rx) for every capture point."""
        fab = net.fabric
        names = {fab.port_name(p): p for p in range(fab.num_ports)}
        out = []

        def add(name, port, host_side):
            d = self.direction or ("both" if host_side else "tx")
            out.append((name, port, d in ("tx", "both"), d in ("rx", "both")))

        def add_host(h):                 # a multi-port host: each port, by its port name
            ports = fab.ports(h)
            if len(ports) == 1:
                add(fab.node_names[h], ports[0], True)
            else:
                for p in ports:
                    add(fab.port_name(p), p, True)

        for point in self.points:
            if point == "all":
                for p in range(fab.num_ports):
                    add(fab.port_name(p), p, False)
            elif point == "hosts":
                for h in range(fab.num_hosts):
                    add_host(h)
            elif point == "switches":
                for p in range(fab.num_ports):
                    if fab.is_switch(fab.port_owner(p)):
                        add(fab.port_name(p), p, False)
            elif point in fab.node_names[:fab.num_hosts]:
                add_host(fab.node_names.index(point))
            elif point in names:
                add(point, names[point], False)
            elif point.isdigit() and int(point) < fab.num_ports:
                add(fab.port_name(int(point)), int(point), False)
            else:
                raise ValueError(f"capture point {point!r} is not all/hosts/switches, a host name, a port name "
                                 f"(e.g. {fab.port_name(1)!r}) or a port id < {fab.num_ports}")
        return out

    def attach(self, net) -> None:
        sim = net.sim
        points = self.resolve(net)
        if len({(p, tx, rx) for _, p, tx, rx in points}) != len(points):
            raise ValueError("capture: a point is named twice (e.g. a port by name and by id)")
        if self.split and len(points) > MAX_CAPTURES:
            raise ValueError(f"capture: split=1 writes one file per point, at most {MAX_CAPTURES}; "
                             f"{len(points)} points given")
        files = ([(str(Path(self.path).with_name(f"{Path(self.path).stem}-{_safe(n)}.pcap")), [(n, p, tx, rx)])
                  for n, p, tx, rx in points] if self.split else [(self.path, points)])
        for path, pts in files:
            s = sim.capture_open(path, self.snaplen, self.from_ps, self.to_ps, self.max_packets, self.qp)
            self.sessions[path] = s
            for _, port, tx, rx in pts:
                sim.capture_port(s, port, tx, rx)

    def close(self, net) -> dict[str, tuple[int, int]]:
        """Finish the files; returns {path: (packets, bytes)}."""
        stats = {path: net.sim.capture_close(s) for path, s in self.sessions.items()}
        self.sessions = {}
        return stats


def _safe(name: str) -> str:
    return name.replace("->", "_to_").replace("/", "_")
