"""Runs fakesnow's HTTP server behind the compatibility layer on a free loopback port.

Usage: python serve.py --port-file FILE [--host 127.0.0.1]

The port is chosen by the OS (bind to port 0) and written to FILE once the socket listens, so
callers never race for a fixed port.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uvicorn  # noqa: E402

from compat import build_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY from this socket; without it a kept-alive
    # connection waits ~40 ms per request (Nagle's algorithm against the client's delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, 0))
    sock.listen(128)
    port = sock.getsockname()[1]

    logging.getLogger("fakesnow").setLevel(args.log_level.upper())
    logging.getLogger("fakesnow.server").setLevel(args.log_level.upper())
    # Idle kept-alive connections are closed after 65 s, like a common load balancer: longer than
    # the client's own idle timeout (30 s), as against Snowflake.
    config = uvicorn.Config(
        build_app(), log_level=args.log_level, access_log=False, lifespan="off", timeout_keep_alive=65
    )
    server = uvicorn.Server(config)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
