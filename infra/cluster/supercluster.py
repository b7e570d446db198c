"""A NATS supercluster on loopback: one JetStream cluster per region, joined by gateways, for the global hive.

Each region is a :class:`NatsCluster` whose name is the region's name (JetStream places a region's streams by
that name). Every server also listens for gateways; with ``wan_delay_ms`` each server's gateway is reached only
through a :class:`DelayProxy` route (its advertised gateway address is the proxy's), so every byte between
regions crosses one simulated WAN link, and :meth:`cut` severs every link between regions at once (each region
keeps its own routes: a WAN partition, not a crash). One CA signs every server when ``tls`` is on: clients,
routes and gateways all need a certificate from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from infra.cluster.nats_server import NatsCluster, NatsServerError, tls_block
from infra.cluster.process import HOST, Started, listen_port
from infra.cluster.wan_proxy import DelayProxy
from infra.tls import CertificateAuthority, TlsFiles, make_ca

__all__ = ["NatsSupercluster", "gateway_config", "region_log_url"]

_REGION_OK = re.compile(r"[A-Za-z0-9_-]{1,32}")


def gateway_config(*, region: str, listen: int, advertise: int, remotes: dict[str, list[int]],
                   tls: TlsFiles | None) -> str:
    """The ``gateway`` block of one server (pure): it listens on ``listen``, tells other regions to dial
    ``advertise``, and dials the ports in ``remotes`` (region → gateway ports as seen from here)."""
    gateways = ", ".join(f'{{name: {name}, urls: [{", ".join(f"nats://{HOST}:{p}" for p in ports)}]}}'
                         for name, ports in sorted(remotes.items()))
    return (
        "gateway {\n"
        f"  name: {region}\n"
        f"  listen: {HOST}:{listen}\n"
        f'  advertise: "{HOST}:{advertise}"\n'
        f"  gateways: [ {gateways} ]\n"
        + (tls_block(tls, "  ") if tls else "")
        + "}\n"
    )


def region_log_url(cluster_url: str, region: str, regions: Sequence[str], stream: str = "ai-memory") -> str:
    """The log URL of a node in ``region``: its region's servers, the stream family, and the hive's regions."""
    return f"{cluster_url}/{stream}?region={region}&regions={','.join(regions)}"


class NatsSupercluster(Started):
    """``regions`` clusters of ``servers_per_region`` servers each, joined by gateways (through WAN proxies when
    ``wan_delay_ms`` is given)."""

    def __init__(self, *, store_dir: Path, regions: Sequence[str], servers_per_region: int = 3, tls: bool = False,
                 wan_delay_ms: float | None = None) -> None:
        bad = [r for r in regions if not _REGION_OK.fullmatch(r)]
        if bad or len(set(regions)) != len(regions) or len(regions) < 2:
            msg = f"regions must be at least two distinct names of letters, digits, '-' or '_': {list(regions)}"
            raise NatsServerError(msg)
        store_dir = Path(store_dir)
        store_dir.mkdir(parents=True, exist_ok=True)
        self.names = list(regions)
        self.ca: CertificateAuthority | None = make_ca(store_dir / "certs") if tls else None
        listen = {r: [listen_port() for _ in range(servers_per_region)] for r in regions}
        #: Each region's servers' own gateway ports (not the proxies'): where a server joining the hive dials.
        self.gateway_ports = listen
        self.proxy: DelayProxy | None = None
        advertised = listen
        if wan_delay_ms is not None:
            targets = [f"{HOST}:{p}" for r in regions for p in listen[r]]
            self.proxy = DelayProxy(targets, wan_delay_ms, store_dir)
            ports = iter(self.proxy.ports)
            advertised = {r: [next(ports) for _ in listen[r]] for r in regions}

        def extra_for(region: str) -> Callable[[int, TlsFiles | None], str]:
            def extra(i: int, files: TlsFiles | None) -> str:
                remotes = {r: advertised[r] for r in regions if r != region}
                return gateway_config(region=region, listen=listen[region][i], advertise=advertised[region][i],
                                      remotes=remotes, tls=files)
            return extra

        self.regions: dict[str, NatsCluster] = {
            r: NatsCluster(store_dir=store_dir / r, n=servers_per_region, cluster_name=r, ca=self.ca,
                           server_prefix=f"{r}-", extra=extra_for(r))
            for r in regions}

    def log_url(self, region: str, stream: str = "ai-memory") -> str:
        return region_log_url(self.regions[region].url, region, self.names, stream)

    def client_files(self, name: str) -> TlsFiles:
        """A client certificate signed by the hive's CA (any region's cluster makes it)."""
        return self.regions[self.names[0]].client_files(name)

    def start(self, *, timeout: float = 30.0) -> None:
        try:
            if self.proxy is not None:
                self.proxy.start()
            for cluster in self.regions.values():
                cluster.start(timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for cluster in self.regions.values():
            cluster.stop()
        if self.proxy is not None:
            self.proxy.stop()

    def cut(self) -> None:
        """Sever every link between regions (each keeps running alone)."""
        self._wan().cut()

    def heal(self) -> None:
        self._wan().heal()

    def _wan(self) -> DelayProxy:
        if self.proxy is None:
            raise NatsServerError("this supercluster has no simulated WAN links (start it with wan_delay_ms)")
        return self.proxy
