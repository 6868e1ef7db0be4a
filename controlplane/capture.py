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
per packet; ``split=1`` writes one file per point (at most 8) instead of one merged file.

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

    @classmethod
    def parse(cls, path: str, text: str | None) -> CaptureSpec:
        """``--pcap-filter`` text: ``key=value`` items separated by spaces or ';'."""
        spec = cls(path=str(path))
        for item in (text or "").replace(";", " ").split():
            if "=" not in item:
                raise ValueError(f"--pcap-filter: expected key=value, got {item!r}")
            k, _, v = item.partition("=")
            try:
                if k == "points":
                    spec.points = [p for p in v.split(",") if p]
                elif k == "dir":
                    if v not in ("tx", "rx", "both"):
                        raise ValueError
                    spec.direction = v
                elif k == "qp":
                    spec.qp = int(v)
                elif k == "from_us":
                    spec.from_ps = int(float(v) * 1e6)
                elif k == "to_us":
                    spec.to_ps = int(float(v) * 1e6)
                elif k == "max":
                    spec.max_packets = int(v)
                elif k == "snaplen":
                    spec.snaplen = int(v)
                elif k == "split":
                    spec.split = v not in ("0", "false", "no")
                else:
                    raise KeyError(k)
            except KeyError:
                raise ValueError(f"--pcap-filter: unknown key {k!r} (points, dir, qp, from_us, to_us, max, "
                                 f"snaplen, split)") from None
            except ValueError:
                raise ValueError(f"--pcap-filter: bad value for {k}: {v!r}") from None
        if spec.max_packets < 0 or spec.to_ps <= spec.from_ps:
            raise ValueError("--pcap-filter: max must be >= 0 and from_us < to_us")
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
