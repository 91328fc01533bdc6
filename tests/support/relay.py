"""A TCP relay on loopback, between a client and a real server (PostgreSQL), that can go
silent: ``freeze()`` stops it carrying anything on the connections it holds, without closing
them (no FIN, no RST: a partition, a host switched off, a firewall dropping the link). New
connections are carried as before, as a client reconnecting by another path would be.
``hold()`` makes what arrives wait in the relay until ``release()``."""

import contextlib
import socket
import threading


class Relay:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._frozen: set[socket.socket] = set()  # relayed connections that carry nothing
        self._flowing = threading.Event()  # cleared: what arrives waits (``hold``)
        self._flowing.set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        """The connections relayed so far go silent; both ends still hold them open."""
        with self._lock:
            self._frozen.update(self._held)

    def hold(self) -> None:
        """What arrives from now on waits in the relay, in order, until ``release()``: a slow
        link, or a peer that takes long to answer."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._flowing.set()
        with self._lock:
            held, self._held = self._held, []
        for sock in [self._listener, *held]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> "Relay":
        return self

    def __exit__(self, *raised: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self._target)
            except OSError:
                return  # closed
            with self._lock:
                self._held += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            with self._lock:
                frozen = source in self._frozen
            if not data:
                return
            self._flowing.wait()
            if not frozen:
                with contextlib.suppress(OSError):
                    sink.sendall(data)
