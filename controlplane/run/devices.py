"""Devices as Python objects over data-plane handles: DPUs, switches, ports, links and QPs.

Each object is a (network, index) handle; its properties read the data plane's current state
through the numpy views (docs/architecture.md, 'The C/Python boundary'), and the few setters go
through validating batch calls.
They are for the control plane and for users poking at a built network; nothing here is on the
per-packet path.

    net = Scenario(...).build()
    net.dpus[3].port.queue_bytes        # bytes waiting in h3's NIC port
    net.links[7].up = False             # fail a link
    qp = net.dpus[1].qps[0]; qp.post_write(1_000_000, at_ps=...)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlplane.run.scenario import Network


class Port:
    """The egress side of a node on one link (ports 2i and 2i+1 belong to link i)."""

    def __init__(self, net: Network, port: int):
        self.net, self.id = net, port

    def _row(self):
        return self.net.sim.ports[self.id]

    @property
    def name(self) -> str:
        return self.net.fabric.port_name(self.id)

    @property
    def node(self) -> int:
        return self.net.fabric.port_owner(self.id)

    @property
    def peer(self) -> Port:
        return Port(self.net, self.id ^ 1)

    @property
    def link(self) -> Link:
        return Link(self.net, self.id // 2)

    rate_bps = property(lambda self: int(self._row()["rate_bps"]))
    delay_ps = property(lambda self: int(self._row()["delay_ps"]))
    queue_bytes = property(lambda self: int(self._row()["q_bytes"].sum()), doc="bytes queued, all priorities")
    peak_queue_bytes = property(lambda self: int(self._row()["q_peak"].max()))
    tx_bytes = property(lambda self: int(self._row()["tx_bytes"]))
    tx_packets = property(lambda self: int(self._row()["tx_packets"]))
    ecn_marked = property(lambda self: int(self._row()["ecn_marked"]))
    dropped = property(lambda self: int(self._row()["dropped"] + self._row()["down_drops"]))

    def set_queue(self, prio: int, cap_bytes: int, kmin_bytes: int = 0, kmax_bytes: int = 0, pmax: float = 0.0):
        """Buffer capacity and RED/ECN marking of one priority queue (0 control, 1 data)."""
        self.net.sim.set_queue(self.id, prio, cap_bytes, kmin_bytes, kmax_bytes, pmax)

    def set_qdisc(self, prio: int, kind: str, **params):
        """The queue discipline of one priority queue (controlplane/fabric/qdisc.py, native/qdisc*.c):
        ``kind`` by name, every parameter its C provider declares (dataplane.sim.qdisc_params)."""
        self.net.sim.set_qdisc(self.id, prio, kind, **params)

    qdisc = property(lambda self: self.net.sim.qdisc_of(self.id, 1), doc="the data queue's discipline")

    def __repr__(self) -> str:
        return f"Port({self.id}, {self.name!r})"


class Link:
    def __init__(self, net: Network, index: int):
        self.net, self.index = net, index
        self._spec = net.fabric.links[index]

    a = property(lambda self: self._spec.a)
    b = property(lambda self: self._spec.b)
    rate_bps = property(lambda self: self._spec.rate_bps)
    delay_ps = property(lambda self: self._spec.delay_ps)

    @property
    def ports(self) -> tuple[Port, Port]:
        return Port(self.net, 2 * self.index), Port(self.net, 2 * self.index + 1)

    @property
    def up(self) -> bool:
        return bool(self.net.sim.ports[2 * self.index]["up"])

    @up.setter
    def up(self, value: bool) -> None:
        """Take the link down (packets sent onto it are lost, counted) or bring it back.
        Routes are not recomputed here (failure reaction is a control-plane policy)."""
        self.net.sim.set_link_up(self.index, value)

    def __repr__(self) -> str:
        names = self.net.fabric.node_names
        return f"Link({self.index}, {names[self.a]}<->{names[self.b]}, {self.rate_bps / 1e9:g} Gb/s)"


class Switch:
    def __init__(self, net: Network, node: int):
        self.net, self.node = net, node

    name = property(lambda self: self.net.fabric.node_names[self.node])
    tier = property(lambda self: self.net.fabric.node_tier[self.node])

    @property
    def ports(self) -> list[Port]:
        return [Port(self.net, p) for p in self.net.fabric.ports(self.node)]

    def __repr__(self) -> str:
        return f"Switch({self.node}, {self.name!r})"


class QueuePair:
    """One end of an RC connection; :attr:`peer` is the other end (the data plane says which)."""

    def __init__(self, net: Network, index: int):
        self.net, self.index = net, index

    def _row(self):
        return self.net.sim.qps[self.index]

    host = property(lambda self: int(self._row()["host"]))
    peer_host = property(lambda self: int(self._row()["peer_host"]))
    rate_bps = property(lambda self: float(self._row()["rate_bps"]), doc="current pacing rate")
    window_bytes = property(lambda self: int(self._row()["window_bytes"]))
    posted_bytes = property(lambda self: int(self._row()["posted_bytes"]))
    acked_bytes = property(lambda self: int(self._row()["acked_bytes"]))
    rx_bytes = property(lambda self: int(self._row()["rx_bytes"]))
    rx_packets = property(lambda self: int(self._row()["rx_packets"]))
    cnps_rx = property(lambda self: int(self._row()["cnps_rx"]))
    retransmitted_packets = property(lambda self: int(self._row()["retx_packets"]))

    @property
    def peer(self) -> QueuePair:
        return QueuePair(self.net, int(self._row()["peer_qp"]))

    def post_write(self, size_bytes: int, at_ps: int | None = None) -> int:
        """Post an RDMA WRITE (at ``at_ps``, default now); returns the message index."""
        sim = self.net.sim
        return sim.post_writes([self.index], [size_bytes], [sim.now if at_ps is None else at_ps])

    def __repr__(self) -> str:
        return f"QueuePair({self.index}, h{self.host}->h{self.peer_host})"


class Connection:
    """An RC connection: the sender QP (the requester, which posts WRITEs and receives ACKs) and
    the receiver QP (the responder, which receives the data and sends ACKs and CNPs).

        c = net.connections[0]
        c.receiver.rx_bytes, c.sender.acked_bytes
    """

    def __init__(self, net: Network, sender: int):
        self.net = net
        self.sender = QueuePair(net, int(sender))
        self.receiver = self.sender.peer

    src = property(lambda self: self.sender.host, doc="the sending host")
    dst = property(lambda self: self.receiver.host, doc="the receiving host")

    def __repr__(self) -> str:
        return f"Connection(h{self.src} qp{self.sender.index} -> h{self.dst} qp{self.receiver.index})"


class Function:
    """A VF of a DPU (``pf0vfN``) and its representor of the same name on the DPU side: the handle
    the control plane programs its tenant's rules through (BlueField's switchdev model)."""

    def __init__(self, net: Network, vf: int):
        self.net, self.vf = net, vf
        self._info = net.vswitch.vf_info[vf]

    name = property(lambda self: self._info["name"])
    representor = property(lambda self: self._info["name"], doc="the DPU-side port that stands for this VF")
    host = property(lambda self: self._info["host"])
    tenant = property(lambda self: self._info["tenant"], doc="its tenant (= VNI)")
    ip = property(lambda self: ".".join(str(self._info["ip"] >> s & 255) for s in (24, 16, 8, 0)))
    rx_packets = property(lambda self: int(self.net.sim.vs_vfs[self.vf]["rx_packets"]))
    tx_packets = property(lambda self: int(self.net.sim.vs_vfs[self.vf]["tx_packets"]))
    isolation_drops = property(lambda self: int(self.net.sim.vs_vfs[self.vf]["isolation_drops"]))

    def add_rule(self, priority: int, match: dict, actions: dict):
        """A rule for packets this VF sends (in_port = its representor), in its tenant's table."""
        return self.net.vswitch.add_rule(self.host, self.tenant, priority, {**match, "in_port": self.name}, actions)

    def __repr__(self) -> str:
        return f"Function({self.name!r} on {self.net.fabric.node_names[self.host]}, tenant {self.tenant}, {self.ip})"


class Dpu:
    """The DPU of a host: its NIC port, its functions (with a vSwitch) and the QPs that live on it."""

    def __init__(self, net: Network, host: int):
        self.net, self.host = net, host

    name = property(lambda self: self.net.fabric.node_names[self.host])

    @property
    def functions(self) -> list[Function]:
        """Its VFs (``pf0vf0``, ``pf0vf1``, ...); empty without ``Scenario.dpu``."""
        vs = self.net.vswitch
        if vs is None or self.host not in vs.hosts:
            return []
        return [Function(self.net, vs.vf_global[(self.host, n)]) for n in range(vs.vfs_per_host)]

    @property
    def vswitch_stats(self) -> dict:
        """This DPU's vSwitch counters (OVS pmd-stats shape) and its slow path's (``sp_``: installs,
        flow-limit hits, evictions, flow limit, install-latency percentiles and histogram)."""
        row = self.net.sim.vs_stats[self.host]
        out = {k: (row[k].tolist() if k == "counters" else int(row[k])) for k in row.dtype.names}
        vs = self.net.vswitch
        if vs is not None and self.host in vs.hosts:
            out.update({f"sp_{k}": v for k, v in vs.slow.host_stats(self.host).items()})
        return out

    @property
    def misdelivered(self) -> int:
        """Packets this DPU's NIC refused and dropped: not addressed to this host or to one of its QPs,
        or a VXLAN frame reaching a NIC without a vSwitch (counters.json: ``misdelivered``, summed)."""
        return self.net.sim.host_misdelivered(self.host)

    @property
    def port(self) -> Port:
        """Its first port (its only one unless it is a multi-port host: see :attr:`ports`)."""
        return Port(self.net, int(self.net.routes.host_port[self.host]))

    @property
    def ports(self) -> list[Port]:
        """All its ports (NICs), in link order."""
        return [Port(self.net, p) for p in self.net.fabric.ports(self.host)]

    @property
    def qps(self) -> list[QueuePair]:
        hosts = self.net.sim.qps["host"]
        return [QueuePair(self.net, int(i)) for i in (hosts == self.host).nonzero()[0]]

    def __repr__(self) -> str:
        return f"Dpu({self.host}, {self.name!r})"
