"""Run a command where DNS answers "no such name" (NXDOMAIN) to everything, or never answers at all
(--silent), without touching the network.

Meant to run as root inside a new mount and network namespace
(`unshare -m -n python netns_dns.py [--silent] -- CMD...`): it brings the namespace's loopback up,
takes DNS queries on 127.0.0.1:53 itself, puts a resolv.conf that names only that server over
/etc/resolv.conf (a bind mount, seen only inside the namespace), runs CMD and exits with its status,
CMD's output passing through. The responder is a thread of this process, so it ends with it.
Silent, the resolver keeps its defaults (two tries of 5 s), as on a machine whose DNS server is away.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import tempfile
import threading

NXDOMAIN_FLAGS = 0x8183  # a response (QR), recursion desired and available (RD, RA), RCODE 3: no such name


def answer_nxdomain(query: bytes) -> bytes | None:
    """The NXDOMAIN response to a DNS query: the query's ID and question, no records (None: not a query)."""
    if len(query) < 12:
        return None
    ident, flags, questions = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or questions != 1:
        return None
    end = 12
    while end < len(query) and query[end]:  # the question's name: length-prefixed labels, then 0
        end += 1 + query[end]
    question = query[12:end + 5]  # the name, its 0, QTYPE and QCLASS
    return struct.pack("!HHHHHH", ident, NXDOMAIN_FLAGS | (flags & 0x0100), 1, 0, 0, 0) + question


def serve(sock: socket.socket, silent: bool) -> None:
    while True:
        query, peer = sock.recvfrom(512)
        reply = answer_nxdomain(query)
        if reply is not None and not silent:
            sock.sendto(reply, peer)


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1:]
    silent = "--silent" in argv[:argv.index("--")]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))
    threading.Thread(target=serve, args=(sock, silent), daemon=True).start()
    with tempfile.NamedTemporaryFile("w", suffix="-resolv.conf") as conf:
        conf.write("nameserver 127.0.0.1\n" + ("" if silent else "options timeout:1 attempts:1\n"))
        conf.flush()
        subprocess.run(["mount", "--bind", conf.name, "/etc/resolv.conf"], check=True)
        return subprocess.run(command, timeout=120).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
