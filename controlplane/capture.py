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

CLI: ``softdpu run incast --pcap out.pcap --pcap-filter "points=h0,h1 snaplen=128 max=10000"``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dataplane.sim import MAX_CAPTURES


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
    MAX_SNAPLEN = 262144                 # libpcap's MAXIMUM_SNAPLEN

    @classmethod
    def parse(cls, path: str, text: str | None) -> CaptureSpec:
        """``--pcap-filter`` text: ``key=value`` items separated by spaces or ';'. Every value is
        checked here (a UsageError naming the key), so a bad filter fails before the run."""
        from controlplane.values import UsageError, closest, parse_bool, parse_int
        from controlplane.units import parse_quantity
        spec = cls(path=str(path))
        seen = set()
        for item in (text or "").replace(";", " ").split():
            k, eq, v = item.partition("=")
            if not eq or not k:
                raise UsageError(f"--pcap-filter: expected key=value, got {item!r}")
            if k not in cls.FILTER_KEYS:
                near = closest(k, cls.FILTER_KEYS)
                raise UsageError(f"--pcap-filter: unknown key {k!r}" + (f" (did you mean {near[0]}?)" if near else "")
                                 + f"; known: {', '.join(cls.FILTER_KEYS)}")
            if k in seen:
                raise UsageError(f"--pcap-filter: {k} given twice")
            seen.add(k)
            if not v:
                raise UsageError(f"--pcap-filter: {k} needs a value ({k}=...)")
            name = f"--pcap-filter {k}"
            if k == "points":
                pts = v.split(",")
                if any(not p for p in pts):
                    raise UsageError(f"{name}: empty point in {v!r} (points=h0,h1 or hosts, switches, all)")
                spec.points = pts
            elif k == "dir":
                if v not in ("tx", "rx", "both"):
                    raise UsageError(f"{name} must be tx, rx or both, got {v!r}")
                spec.direction = v
            elif k == "qp":
                spec.qp = parse_int(name, v, minimum=0)
                if spec.qp >= 2**32 - 1:
                    raise UsageError(f"{name} must be a QP id < {2**32 - 1}, got {v}")
            elif k in ("from_us", "to_us"):
                try:
                    ps = parse_quantity(v if v[-1:].isalpha() else v + "us", "time")
                except ValueError as e:
                    raise UsageError(f"{name}: {e}") from None
                if not 0 <= ps < 2**63:
                    raise UsageError(f"{name} must be >= 0 and < 2**63 ps, got {v}")
                if k == "from_us":
                    spec.from_ps = ps
                else:
                    spec.to_ps = ps
            elif k == "max":
                spec.max_packets = parse_int(name, v, minimum=0)
                if spec.max_packets >= 2**63:          # the data plane's counter (0 = no limit)
                    raise UsageError(f"{name} must be a packet count < 2**63 (0 = no limit), got {v}")
            elif k == "snaplen":
                spec.snaplen = parse_int(name, v, minimum=1)
                if spec.snaplen > cls.MAX_SNAPLEN:
                    raise UsageError(f"{name} must be <= {cls.MAX_SNAPLEN} bytes, got {v}")
            elif k == "split":
                spec.split = parse_bool(name, v)
        if spec.to_ps <= spec.from_ps:
            raise UsageError(f"--pcap-filter: from_us ({spec.from_ps / 1e6:g}) must be < to_us ({spec.to_ps / 1e6:g})")
        return spec

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

        for point in self.points:
            if point == "all":
                for p in range(fab.num_ports):
                    add(fab.port_name(p), p, False)
            elif point == "hosts":
                for h in range(fab.num_hosts):
                    add(fab.node_names[h], int(net.routes.host_port[h]), True)
            elif point == "switches":
                for p in range(fab.num_ports):
                    if fab.is_switch(fab.port_owner(p)):
                        add(fab.port_name(p), p, False)
            elif point in fab.node_names[:fab.num_hosts]:
                h = fab.node_names.index(point)
                add(point, int(net.routes.host_port[h]), True)
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
