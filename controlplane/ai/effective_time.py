"""Effective training time of a synchronous training job under failures (issue #17, parts 4-5).

A synchronous data/tensor/pipeline-parallel job stops as a whole whenever any of its components
fails: it is interrupted, the fault is detected, the job is restarted (after replacing the faulty
node when the fault is a node's), and the work since the last committed checkpoint is recomputed.
Checkpoints cost time too. With ``useful`` the training progress and ``wall`` the wall-clock time

    unproductive = interruptions x (detection + recovery + recomputation)
                   + total checkpoint time (+ slowdown while a link is down)
    effective    = useful / wall = useful / (useful + unproductive)

**Failure processes.** Each component class c (GPU, NIC, link/cable, switch, host hardware and
maintenance, host software, loss spike) fails as a Poisson process of rate ``rate_c`` per
component per day, with ``count_c`` components: GPUs; NICs = GPUs (one NIC per GPU, rail
fabric); hosts = GPUs / ``gpus_per_host``; links and switches of a non-blocking folded Clos of
radix ``switch_radix`` (:func:`fabric_counts`), or those of a built rail fabric
(:func:`job_on_fabric`), or given counts; a loss spike is one process per
job (count 1). By superposition the job is interrupted at rate lambda = sum_c rate_c x count_c,
mean time between interruptions M = 1/lambda, and an interruption is of class c with probability
rate_c x count_c / lambda, independently of when it happens.

**Default rates** (assumptions, :data:`LLAMA3_COUNTS`): Meta's Llama 3 report (Llama Team, "The
Llama 3 Herd of Models", arXiv:2407.21783, 2024, section 3.3.4 and Table 5): 466 job
interruptions in a 54-day snapshot of pre-training on 16,384 H100 GPUs, 47 planned (automated
maintenance) and 419 unexpected. The unexpected ones by cause (count, share as printed): faulty
GPU 148 (30.1 %), GPU HBM3 memory 72 (17.2 %), software bug 54 (12.9 %), network switch/cable 35
(8.4 %), host maintenance 32 (7.6 %), GPU SRAM memory 19 (4.5 %), GPU system processor 17
(4.1 %), NIC 7 (1.7 %), NCCL watchdog timeouts 7 (1.7 %), silent data corruption 6 (1.4 %), GPU
thermal interface and sensor 6 (1.4 %), SSD 3, power supply 3, server chassis 2, IO expansion
board 2, dependency 2, CPU 2, system memory 2 (0.7-0.5 % each). Grouped into the classes here:
GPU 268 (faulty GPU, HBM3, SRAM, system processor, SDC, thermal), NIC 7, switch/cable 35 (split
half to links, half to switches: an assumption, the report does not separate them), host
hardware/maintenance 46, host software 63 (software bug, NCCL watchdog, dependency); each count
divided by 54 days and by the number of such components of a 16,384-GPU cluster (8 GPUs per
host, a three-tier radix-64 Clos) gives the rate per component per day. The 47 planned
interruptions are left out (maintenance can be scheduled at a checkpoint).
Loss spikes: PaLM (Chowdhery et al., "PaLM: Scaling Language Modeling with Pathways",
arXiv:2204.02311, 2022, section 5.1) saw about 20 loss spikes in PaLM-540B's training, each
handled by restarting from a checkpoint before the spike; its training took about 1,200 h on 6,144
TPU v4 chips plus 336 h on 3,072 (section B of the paper), so about 20 / 64 days = 0.31 per day.
For scale: OPT-175B (Zhang et al., arXiv:2205.01068, 2022) reports at least 35 manual restarts and
over 100 hosts cycled in two months on 992 A100s; ByteDance's MegaScale (Jiang et al., NSDI 2024)
reports over 100 failures-and-restarts in several weeks on 12,288 GPUs and over 90 % effective
training time, as does Llama 3. Those are not used as defaults.

**Per interruption.** Detection ``detection_s`` (default 600 s: the 10-minute default timeout of
PyTorch's NCCL process group, the bound for a hang; a crash is seen faster), restart
``restart_s`` (relaunch every rank and load the last checkpoint; default 600 s, an assumption),
and for a node fault (GPU, NIC, host) the time to get a healthy node, by ``recovery`` strategy:
``restart`` (no spare: reboot/repair the node in place, ``replace_restart_s`` default 3600 s),
``standby`` (a standby node from the pool, provisioned and health-checked, default 1200 s),
``hot_spare`` (a spare already in the job's allocation, default 120 s); the defaults are
assumptions, not published figures. Then the work since the last committed checkpoint is
recomputed.

**Checkpoints.** Every ``tau`` seconds of useful time; the checkpoint (``params`` x
``bytes_per_param``, default 16 B/param: bf16 weights 2 + fp32 master weights 4 + Adam moments 8
+ bf16 gradients 2, the model states of mixed-precision Adam as counted by ZeRO, Rajbhandari et
al., SC 2020; 12-14 B if only the master weights and moments are kept) is written at
min(``storage_bps``, hosts x ``host_storage_bps``) (default storage 16 Tb/s = 2 TB/s, the sustained
throughput of Llama 3's Tectonic storage for checkpoints, same report section 3.3.1; 400 Gb/s per
host front end). ``sync``: the job stops for the whole write delta. ``async``: the job stops only
for a snapshot to host memory (checkpoint bytes per GPU / ``snapshot_bps``, default 400 Gb/s of
device-to-host copy per GPU, an assumption) and the write overlaps with training; the checkpoint
counts (is committed) only once written, so a failure during the write rolls back to the one
before. If a write takes longer than tau the next snapshot waits for it.

**Link down.** A fraction ``link_tolerated`` of link failures does not interrupt the job (the
fabric routes around the link: spraying or adaptive routing); for ``link_repair_s`` the steps run
``link_down_slowdown`` times slower. ``link_down_slowdown`` defaults to 1.0 (no slowdown) and
``link_tolerated`` to 0 (every switch/cable failure interrupted Llama 3's job): the hook for the
packet-level value (a rail link down under ECMP vs spraying, issue #17 part 4), to be measured on
the fabric model and passed here.

**Closed forms** (lambda, D = mean detection + recovery over the classes; failures during
computation and checkpoint stalls, none during recovery): with sync checkpoints each interval of s
= tau + delta completes after (M + D)(e^(lambda s) - 1) expected wall time (the renewal form of
Daly, "A higher order estimate of the optimum checkpoint interval for restart dumps", FGCS 22(3),
2006), so effective = tau / ((M + D)(e^(lambda s) - 1)); with async ones a checkpoint counts only
``lag`` = write seconds after its stall, which multiplies the failures per interval by
e^(lambda lag) (derived in :func:`expected_terms`); first order (Young, "A first order
approximation to the optimum checkpoint interval", CACM 17(9), 1974): waste ~ delta / tau + (D +
tau / 2) / M, best at tau* = sqrt(2 delta M); Daly's higher-order optimum tau = sqrt(2 delta
M)[1 + sqrt(delta / (2M)) / 3 + delta / (18 M)] - delta (delta < 2M; else M).
:func:`expected_wall` gives the exact expected wall time of a finite job (what the Monte-Carlo
simulates).

**Monte-Carlo** (:func:`monte_carlo`): a job of ``days`` of useful training (rounded to whole
intervals) simulated interruption by interruption, ``replicas`` independent runs vectorized with
a seeded numpy Generator (one seed = the same numbers); the mean of each term and a normal 95 %
confidence interval of the mean wall time and effective fraction.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel

from controlplane.config.schema import Choice, Int, Num, Strict, section

DAY_S = 86400.0
CLASSES = ("gpu", "nic", "link", "switch", "host", "software", "loss_spike")
#: classes whose fault takes a node out: recovery needs a healthy node (spare, standby or repair)
NODE_CLASSES = ("gpu", "nic", "host")
RECOVERY = ("restart", "standby", "hot_spare")
TERMS = ("checkpoint", "detection", "recovery", "recomputation", "slowdown")

#: Llama 3 (arXiv:2407.21783, Table 5): unexpected interruptions by cause in 54 days on 16,384 GPUs,
#: grouped into this model's classes (switch/cable split half and half: an assumption)
LLAMA3_COUNTS = {"gpu": 148 + 72 + 19 + 17 + 6 + 6, "nic": 7, "link": 17.5, "switch": 17.5,
                 "host": 32 + 3 + 3 + 2 + 2 + 2 + 2, "software": 54 + 7 + 2}
LLAMA3_GPUS, LLAMA3_DAYS = 16384, 54
#: PaLM-540B (arXiv:2204.02311): ~20 loss spikes in ~1,536 h of training
PALM_SPIKES, PALM_DAYS = 20, (1200 + 336) / 24


def fabric_counts(gpus: int, radix: int = 64) -> tuple[int, int]:
    """(links, switches) of a non-blocking folded Clos with one NIC port per GPU and switches of
    ``radix`` ports: t tiers, the fewest with gpus <= 2 (radix/2)^t; every tier carries one link
    per GPU (gpus x t links); each lower tier has gpus / (radix/2) switches, the top one gpus / radix."""
    if gpus < 1 or radix < 4:
        raise ValueError(f"fabric_counts: gpus must be >= 1 and radix >= 4, got {gpus}, {radix}")
    half = radix // 2
    t = 1
    while gpus > 2 * half ** t:
        t += 1
    if t == 1:
        return gpus, 1
    return gpus * t, (t - 1) * math.ceil(gpus / half) + math.ceil(gpus / radix)


def counts_of_fabric(fabric) -> dict[str, int]:
    """GPUs, GPUs per server, network links and switches of a built rail fabric
    (controlplane/ai/rails.py ``rail_clos``): NVLink links and NVSwitches are inside the servers
    (their faults are GPU/host faults here), SHARP aggregation engines are part of their switch."""
    from controlplane.ai.rails import RailLayout
    lay = RailLayout.of(fabric)
    names = fabric.node_names

    def internal(n: int) -> bool:
        return names[n].startswith("nvsw") or names[n].startswith("agg@")
    links = sum(1 for ln in fabric.links if not (internal(ln.a) or internal(ln.b)))
    switches = sum(1 for n in range(fabric.num_hosts, fabric.num_hosts + fabric.num_switches) if not internal(n))
    return {"gpus": lay.num_gpus, "gpus_per_host": int(fabric.params["num_rails"]), "links": links,
            "switches": switches}


def job_on_fabric(fabric, **kw: Any) -> "TrainingJob":
    """A TrainingJob on every GPU of a built rail fabric, with its link and switch counts."""
    return job({**counts_of_fabric(fabric), **kw})


def _default_rates() -> dict[str, float]:
    links, switches = fabric_counts(LLAMA3_GPUS)
    count = {"gpu": LLAMA3_GPUS, "nic": LLAMA3_GPUS, "link": links, "switch": switches,
             "host": LLAMA3_GPUS // 8, "software": LLAMA3_GPUS // 8}
    out = {c: LLAMA3_COUNTS[c] / LLAMA3_DAYS / count[c] for c in count}
    out["loss_spike"] = PALM_SPIKES / PALM_DAYS
    return out


DEFAULT_RATES = _default_rates()


class Rates(Strict):
    """Failures per component per day (a loss spike: per job per day)."""
    gpu: Num("GPU faults per GPU per day (Llama 3: GPU, HBM3, SRAM, GSP, SDC, thermal)") = DEFAULT_RATES["gpu"]
    nic: Num("NIC faults per NIC per day (Llama 3)") = DEFAULT_RATES["nic"]
    link: Num("link/cable faults per link per day (Llama 3 switch/cable, half)") = DEFAULT_RATES["link"]
    switch: Num("switch faults per switch per day (Llama 3 switch/cable, half)") = DEFAULT_RATES["switch"]
    host: Num("host hardware/maintenance faults per host per day (Llama 3)") = DEFAULT_RATES["host"]
    software: Num("software faults per host per day (Llama 3: bugs, NCCL watchdog, dependency)") = \
        DEFAULT_RATES["software"]
    loss_spike: Num("loss spikes (rollbacks) per job per day (PaLM)") = DEFAULT_RATES["loss_spike"]


class TrainingJob(Strict):
    """A synchronous training job on a cluster, its checkpointing and its recovery."""
    gpus: Int("GPUs of the job", lo=1) = 16384
    gpus_per_host: Int("GPUs per host", lo=1) = 8
    switch_radix: Int("ports per switch of the Clos used to count links and switches", lo=4) = 64
    links: Int("links of the fabric (default: the Clos's)", lo=0) = None
    switches: Int("switches of the fabric (default: the Clos's)", lo=0) = None
    rates: Rates = Rates()
    params: Num("model parameters", lo=0, lo_open=True) = 405e9
    bytes_per_param: Num("checkpoint bytes per parameter", lo=0, lo_open=True) = 16.0
    storage_bps: Num("bandwidth of the storage for checkpoints (bit/s)", lo=0, lo_open=True) = 16e12
    host_storage_bps: Num("front-end bandwidth per host to storage (bit/s)", lo=0, lo_open=True) = 400e9
    checkpoint: Choice(("sync", "async"), "checkpoint writes: sync stops the job, async overlaps") = "sync"
    snapshot_bps: Num("async: device-to-host copy rate per GPU (bit/s)", lo=0, lo_open=True) = 400e9
    tau_s: Num("useful seconds between checkpoints (default: Daly's optimum)", lo=0, lo_open=True) = None
    detection_s: Num("seconds from a fault to its detection") = 600.0
    restart_s: Num("seconds to relaunch the job and load the checkpoint") = 600.0
    recovery: Choice(RECOVERY, "how a node fault gets a healthy node") = "standby"
    replace_restart_s: Num("restart: seconds to repair/reboot the node in place") = 3600.0
    replace_standby_s: Num("standby: seconds to provision a standby node") = 1200.0
    replace_hot_spare_s: Num("hot_spare: seconds to swap in a spare of the allocation") = 120.0
    link_tolerated: Num("share of link failures the fabric routes around (no interruption)", hi=1) = 0.0
    link_repair_s: Num("seconds a tolerated link stays down") = 3600.0
    link_down_slowdown: Num("step-time factor while a tolerated link is down (>= 1; from the fabric model)",
                            lo=1) = 1.0
    # derived quantities -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        links, switches = fabric_counts(self.gpus, self.switch_radix)
        hosts = math.ceil(self.gpus / self.gpus_per_host)
        return {"gpu": self.gpus, "nic": self.gpus, "link": links if self.links is None else self.links,
                "switch": switches if self.switches is None else self.switches, "host": hosts,
                "software": hosts, "loss_spike": 1}

    def class_rates(self) -> dict[str, float]:
        """Interruptions per second by class (tolerated link failures excluded)."""
        r, n = self.rates.model_dump(), self.counts()
        out = {c: r[c] * n[c] / DAY_S for c in CLASSES}
        out["link"] *= 1.0 - self.link_tolerated
        return out

    def rate(self) -> float:
        """lambda: interruptions per second."""
        return sum(self.class_rates().values())

    def mtbi_s(self) -> float:
        """M: mean time between interruptions (s); inf without failures."""
        lam = self.rate()
        return math.inf if lam == 0 else 1.0 / lam

    def tolerated_rate(self) -> float:
        """Tolerated link failures per second (each slows the steps for link_repair_s)."""
        return self.rates.link * self.counts()["link"] * self.link_tolerated / DAY_S

    def checkpoint_bytes(self) -> float:
        return self.params * self.bytes_per_param

    def write_s(self) -> float:
        """Seconds to write one checkpoint to storage."""
        hosts = self.counts()["host"]
        return self.checkpoint_bytes() * 8 / min(self.storage_bps, hosts * self.host_storage_bps)

    def stall_s(self, tau: float | None = None) -> float:
        """Seconds the job stops per checkpoint: the write (sync), or the snapshot plus any wait for
        the previous write still in flight (async)."""
        if self.checkpoint == "sync":
            return self.write_s()
        tau = self.tau() if tau is None else tau
        return self.snapshot_s() + max(0.0, self.write_s() - tau)

    def recovery_s(self) -> dict[str, float]:
        """Detection + recovery seconds per interruption, by class."""
        replace = {"restart": self.replace_restart_s, "standby": self.replace_standby_s,
                   "hot_spare": self.replace_hot_spare_s}[self.recovery]
        return {c: self.detection_s + self.restart_s + (replace if c in NODE_CLASSES else 0.0) for c in CLASSES}

    def mean_recovery_s(self) -> tuple[float, float]:
        """(mean detection, mean recovery) seconds over the interruptions' classes."""
        lam, cr = self.rate(), self.class_rates()
        if lam == 0:
            return self.detection_s, self.restart_s
        rec = sum(cr[c] * (self.recovery_s()[c] - self.detection_s) for c in CLASSES) / lam
        return self.detection_s, rec

    def snapshot_s(self) -> float:
        """Async: seconds to copy each GPU's share of the checkpoint to host memory."""
        return self.checkpoint_bytes() * 8 / self.gpus / self.snapshot_bps

    def tau(self) -> float:
        """The checkpoint interval: tau_s, or else Daly's optimum for the stall (sync: the write;
        async: the snapshot, but not below the write time, under which writes queue and the
        stall grows one for one)."""
        if self.tau_s is not None:
            return self.tau_s
        if self.checkpoint == "sync":
            return daly_tau(self.write_s(), self.mtbi_s())
        return max(daly_tau(self.snapshot_s(), self.mtbi_s()), self.write_s())


def job(given: dict | TrainingJob | None = None, **kw: Any) -> TrainingJob:
    """A validated TrainingJob from a dict and/or keywords; a bad value is a ValueError naming it."""
    if isinstance(given, TrainingJob):
        given = given.model_dump(exclude_unset=True)
    d = {**(given or {}), **kw}
    for k in ("links", "switches", "tau_s"):         # None: the derived value (the field's default)
        if k in d and d[k] is None:
            del d[k]
    if isinstance(d.get("rates"), BaseModel):
        d["rates"] = d["rates"].model_dump(exclude_unset=True)
    return section(TrainingJob, d, "job")


# --------------------------------------------------------------------------------- closed forms
def young_tau(delta: float, mtbf: float) -> float:
    """Young 1974: tau* = sqrt(2 delta M)."""
    return math.sqrt(2 * delta * mtbf) if math.isfinite(mtbf) else math.inf


def daly_tau(delta: float, mtbf: float) -> float:
    """Daly 2006, eq. 37: sqrt(2 delta M)[1 + sqrt(delta/(2M))/3 + delta/(18M)] - delta for
    delta < 2M, else M."""
    if not math.isfinite(mtbf):
        return math.inf
    if delta >= 2 * mtbf:
        return mtbf
    x = delta / (2 * mtbf)
    return math.sqrt(2 * delta * mtbf) * (1 + math.sqrt(x) / 3 + x / 9) - delta


def _lag(j: TrainingJob, p: float) -> float:
    """Seconds after its stall ends until a checkpoint counts: 0 (sync), the write (async)."""
    return 0.0 if j.checkpoint == "sync" else min(j.write_s(), p)


def expected_terms(j: TrainingJob, tau: float | None = None) -> dict[str, float]:
    """Expected seconds of each term per second of useful work (``useful`` = 1), and
    ``effective``, in steady state (a long job): exact under the model for sync and async.

    An interval is p = tau + stall; a checkpoint counts ``lag`` after its stall (0 sync, the write
    async). After a restart the first checkpoint needs p + lag without failure, each next one p
    (memoryless failures), and a failure goes back to the last counted one. Per interval:
    failures nf = (e^(lam p) - 1) e^(lam lag), wall (M + D) nf, of which the stall, nf x
    (detection + recovery) and nf / lam - p recomputed (sync: Daly 2006's renewal form). Effective
    0 when e^(lam (p + lag)) is beyond a float (the job never finishes)."""
    tau = j.tau() if tau is None else float(tau)
    if not tau > 0 or not math.isfinite(tau):
        raise ValueError(f"expected_terms: tau must be a finite number > 0 (s), got {tau}")
    lam = j.rate()
    det, rec = j.mean_recovery_s()
    stall = j.stall_s(tau)
    p = tau + stall
    lag = _lag(j, p)
    if lam * (p + lag) > 700:                    # e^(lam s) beyond a float: the job never finishes
        return {**{k: math.inf for k in TERMS}, "useful": 1.0, "effective": 0.0}
    nf = math.expm1(lam * p) * math.exp(lam * lag)   # expected failures per interval
    lost = (nf / lam - p) if lam > 0 else 0.0        # running seconds lost (redone) per interval
    t = {"checkpoint": stall / tau, "detection": nf * det / tau, "recovery": nf * rec / tau,
         "recomputation": lost / tau}
    t["slowdown"] = _slowdown_share(j) * (1 + sum(t.values()))
    t["useful"] = 1.0
    t["effective"] = 1.0 / sum(t[k] for k in TERMS + ("useful",))
    return t


def expected_wall(j: TrainingJob, intervals: int, tau: float | None = None) -> float:
    """Expected wall seconds of a job of ``intervals`` checkpoint intervals (what monte_carlo
    simulates: it ends when the last interval's computation and stall end), without the link-down
    slowdown; exact, by the recursion over (from a restart | just after a checkpoint counted,
    intervals left): F(m) = (M + C)(e^(lam a) - 1) + R(m - 1), a = p + lag (p if m = 1);
    R(m) = (1 - e^(-lam b))(M + C + F(m)) + e^(-lam b) R(m - 1), b = p (p - lag if m = 1)."""
    tau = j.tau() if tau is None else float(tau)
    lam = j.rate()
    c = sum(j.mean_recovery_s())
    p = tau + j.stall_s(tau)
    lag = _lag(j, p)
    if lam == 0:
        return intervals * p
    m_c = 1 / lam + c
    r_prev, f = 0.0, 0.0
    for m in range(1, intervals + 1):
        a, b = (p, p - lag) if m == 1 else (p + lag, p)
        f = m_c * math.expm1(lam * a) + r_prev
        q = math.exp(-lam * b)
        r_prev = (1 - q) * (m_c + f) + q * r_prev
    return f


def _slowdown_share(j: TrainingJob) -> float:
    """Extra seconds per wall second from tolerated link failures: each slows the steps by
    link_down_slowdown for link_repair_s, i.e. loses link_repair_s (1 - 1/f) of progress (first
    order: overlapping link failures and failures while slowed are neglected)."""
    return j.tolerated_rate() * j.link_repair_s * (1 - 1 / j.link_down_slowdown)


def effective_exact(j: TrainingJob, tau: float | None = None) -> float:
    """tau / ((M + D)(e^(lambda p) - 1) e^(lambda lag)), p = tau + stall (sync: Daly 2006), with
    the link-down slowdown."""
    return expected_terms(j, tau)["effective"]


def effective_first_order(j: TrainingJob, tau: float | None = None) -> float:
    """Young's first order: 1 - delta / tau - (D + (tau + delta) / 2) / M (sync); async: the
    stall, and (tau + stall) / 2 + write lost per failure."""
    tau = j.tau() if tau is None else float(tau)
    lam = j.rate()
    det, rec = j.mean_recovery_s()
    stall = j.stall_s(tau)
    lost = (tau + stall) / 2 + (0.0 if j.checkpoint == "sync" else min(j.write_s(), tau + stall))
    return 1 - stall / tau - lam * (det + rec + lost) - _slowdown_share(j)


# --------------------------------------------------------------------------------- Monte-Carlo
#: the most interruptions per simulated run monte_carlo accepts (in expectation): beyond, the job
#: (nearly) never finishes and the loop would not end in reasonable time
MAX_INTERRUPTIONS = 10**6


def monte_carlo(j: TrainingJob, days: float = 30.0, replicas: int = 200, seed: int = 1,
                tau: float | None = None, z: float = 1.96) -> dict:
    """Simulate ``replicas`` runs of a job of ``days`` of useful training (rounded to whole
    checkpoint intervals, at least one). Returns the mean seconds of each term per run, the mean
    wall and its ``z`` confidence half-width, the effective fraction useful / mean wall with its
    interval, and the mean number of interruptions."""
    if not (isinstance(days, (int, float)) and math.isfinite(days) and days > 0):
        raise ValueError(f"monte_carlo: days must be a number > 0, got {days!r}")
    if isinstance(replicas, bool) or not isinstance(replicas, (int, np.integer)) or replicas < 2:
        raise ValueError(f"monte_carlo: replicas must be an integer >= 2, got {replicas!r}")
    tau = j.tau() if tau is None else float(tau)
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"monte_carlo: tau must be a finite number > 0 (s), got {tau}")
    rng = np.random.default_rng(seed)
    n_int = max(1, round(days * DAY_S / tau))
    useful = n_int * tau
    lam = j.rate()
    cr = j.class_rates()
    probs = np.array([cr[c] for c in CLASSES]) / lam if lam > 0 else None
    rec_by = j.recovery_s()
    det = np.full(len(CLASSES), j.detection_s)
    rec = np.array([rec_by[c] - j.detection_s for c in CLASSES])
    stall = j.stall_s(tau)
    write = j.write_s()
    p = tau + stall
    sync = j.checkpoint == "sync"
    lag = 0.0 if sync else min(write, p)      # async: a checkpoint counts write seconds after its stall
    # expected interruptions per run: intervals x (e^(lam (p + lag)) - 1), exact for sync, an upper
    # bound's order for async (an attempt must run p + lag to keep its interval)
    x = lam * (p + lag)
    expected = math.inf if x > 700 else n_int * math.expm1(x)
    if expected > MAX_INTERRUPTIONS:
        raise ValueError(f"monte_carlo: about {expected:.3g} interruptions per run expected (lambda = "
                         f"{lam * DAY_S:.3g}/day, interval + stall = {p:.3g} s): the job (nearly) never finishes; "
                         f"more than {MAX_INTERRUPTIONS} is refused")

    left = np.full(replicas, n_int, dtype=np.int64)     # intervals still to do
    acc = {k: np.zeros(replicas) for k in ("checkpoint", "detection", "recovery", "recomputation")}
    nfail = np.zeros(replicas, dtype=np.int64)
    active = np.ones(replicas, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        x = rng.exponential(1 / lam, idx.size) if lam > 0 else np.full(idx.size, np.inf)
        cls = rng.choice(len(CLASSES), size=idx.size, p=probs) if lam > 0 else np.zeros(idx.size, dtype=int)
        full = np.floor(x / p)                           # intervals finished before the failure
        done = full >= left[idx]
        # finishing: every remaining interval completes
        d = idx[done]
        acc["checkpoint"][d] += left[d] * stall
        left[d] = 0
        active[d] = False
        # interrupted: keep the committed intervals, lose the rest
        f = idx[~done]
        if f.size:
            xf, kf, cf = x[~done], full[~done].astype(np.int64), cls[~done]
            u = xf - kf * p
            kept = kf if sync else np.where(u >= lag, kf, np.maximum(kf - 1, 0))
            acc["checkpoint"][f] += kept * stall          # an interval lost is redone, its stall too
            acc["recomputation"][f] += xf - kept * p
            acc["detection"][f] += det[cf]
            acc["recovery"][f] += rec[cf]
            left[f] -= kept
            nfail[f] += 1
    wall = useful + sum(acc.values())
    # tolerated link failures: Poisson over the wall time, each losing link_repair_s (1 - 1/f)
    per = j.link_repair_s * (1 - 1 / j.link_down_slowdown)
    slow = rng.poisson(j.tolerated_rate() * wall) * per if per > 0 else np.zeros(replicas)
    acc["slowdown"] = slow
    wall = wall + slow
    mean_wall = float(wall.mean())
    half = z * float(wall.std(ddof=1)) / math.sqrt(replicas)
    return {"useful_s": useful, "tau_s": tau, "stall_s": stall, "replicas": replicas, "seed": seed,
            "wall_s": mean_wall, "wall_half_s": half,
            "terms_s": {k: float(acc[k].mean()) for k in TERMS},
            "interruptions": float(nfail.mean()),
            "effective": useful / mean_wall,
            "effective_lo": useful / (mean_wall + half), "effective_hi": useful / max(mean_wall - half, useful)}


def requirement(j: TrainingJob, target: float = 0.95) -> dict[str, float | None]:
    """What one change alone takes to reach ``target`` (the rest as in ``j``, tau at Daly's
    optimum for each): the least storage bandwidth (bit/s, the hosts' front end not limiting),
    the largest factor on every detection, restart and replacement time (``recovery_scale``;
    ``detect_recover_s``: the mean detection + recovery it allows) and the largest factor on every
    failure rate (``rate_scale``). Factors above 1 are the margin of a job already at the target;
    None when unreachable (factors searched in [1e-6, 1e3], bandwidths in [1 Mb/s, 1e17 b/s])."""
    def eff(**kw):
        jj = job(j, tau_s=None, **kw)
        return effective_exact(jj)

    def solve(f, lo, hi, increasing=True, iters=60):
        # bisection on a monotone effective(x); geometric when the bracket spans decades
        flo, fhi = f(lo), f(hi)
        if (fhi if increasing else flo) < target:
            return None
        if (flo if increasing else fhi) >= target:
            return lo if increasing else hi
        for _ in range(iters):
            mid = math.sqrt(lo * hi)
            if (f(mid) >= target) == increasing:
                hi = mid
            else:
                lo = mid
        return hi if increasing else lo

    scale_rec = lambda s: eff(detection_s=j.detection_s * s, restart_s=j.restart_s * s,   # noqa: E731
                              replace_restart_s=j.replace_restart_s * s, replace_standby_s=j.replace_standby_s * s,
                              replace_hot_spare_s=j.replace_hot_spare_s * s)
    rates = j.rates.model_dump()
    s = solve(scale_rec, 1e-6, 1e3, increasing=False)
    f = solve(lambda k: eff(rates={c: v * k for c, v in rates.items()}), 1e-6, 1e3, increasing=False)
    bw = solve(lambda b: eff(storage_bps=b, host_storage_bps=max(j.host_storage_bps, b)), 1e6, 1e17)
    det, rec = j.mean_recovery_s()
    return {"storage_bps": bw, "recovery_scale": s, "detect_recover_s": None if s is None else s * (det + rec),
            "rate_scale": f}
