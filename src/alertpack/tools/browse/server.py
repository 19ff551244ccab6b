"""Serve the browse application on 127.0.0.1 with uvicorn, and the threads that fill its index."""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alertpack.errors import OutputError

if TYPE_CHECKING:
    from alertpack.tools.browse.index import AlertIndex, IndexingStatus

__all__ = ["DEFAULT_PORT", "HOST", "BrowseSession", "bind", "serve"]

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_GRACEFUL_SECONDS = 2


def bind(port: int | None = None) -> socket.socket:
    """A listening socket on 127.0.0.1.

    Parameters
    ----------
    port : `int`, optional
        The port; 0 for any free one. By default `DEFAULT_PORT`, or a free
        one when that is taken.

    Raises
    ------
    OutputError
        When the port asked for is taken or not allowed.
    """
    wanted = DEFAULT_PORT if port is None else port
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((HOST, wanted))
    except OSError as error:
        if port is None and error.errno == errno.EADDRINUSE:
            listener.bind((HOST, 0))
        else:
            listener.close()
            reason = "is in use" if error.errno == errno.EADDRINUSE else (
                f"cannot be used ({error.strerror})")
            raise OutputError(f"port {wanted} on {HOST} {reason}; choose another with --port "
                              "(0 for any free port)") from None
    listener.listen(128)
    return listener


@dataclass
class BrowseSession:
    """The index of one ``alertpack browse`` run and the threads that fill it.

    Files are indexed in a background thread (`start`), so that the pages are
    up at once and the table fills as files are read; a `LiveFeed` adds
    alerts from Kafka. `close` stops both and removes the temporary spool.
    """

    paths: Sequence[str | os.PathLike] = ()
    live: Any = None
    on_problem: Callable[[str], None] | None = None
    index: AlertIndex | None = None
    indexing: IndexingStatus = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        # the command-line parser imports this module (DEFAULT_PORT); the index imports numpy
        from alertpack.tools.browse.index import AlertIndex, IndexingStatus

        if self.index is None:
            self.index = AlertIndex()
        if self.indexing is None:
            self.indexing = IndexingStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from alertpack.tools.browse.index import index_paths  # as in __post_init__

        if self.paths:
            self.indexing.running = True
            self._thread = threading.Thread(
                target=index_paths, name="alertpack-browse-index", daemon=True,
                args=(self.index, list(self.paths), self.indexing),
                kwargs={"stop": self._stop, "on_problem": self.on_problem},
            )
            self._thread.start()
        if self.live is not None:
            self.live.start()

    def wait_indexed(self, timeout: float | None = None) -> bool:
        """Wait for the files to be indexed; True when they are."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self) -> None:
        self._stop.set()
        if self.live is not None:
            self.live.stop()
        if self._thread is not None:
            self._thread.join(10)
        if self.index is not None:
            self.index.close()


def serve(app: Any, listener: socket.socket) -> None:
    """Serve ``app`` on ``listener`` until Ctrl-C or SIGTERM (then re-raised as usual)."""
    import uvicorn  # the optional `browse` extra; the parser imports this module

    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", ws="none",
        timeout_graceful_shutdown=_GRACEFUL_SECONDS,
    )
    uvicorn.Server(config).run(sockets=[listener])
