"""Output faults: stale temporary files of killed writers, bad output paths, file-size limit."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alertpack.cli import main as cli_main
from alertpack.errors import OutputError
from alertpack.sinks.files import STALE_TEMP_SECONDS, atomic_output, clean_stale_temporaries

# a writer that opens an alert file atomically, writes part of it, then waits to be killed
SLOW_WRITER = """
import sys, time
from alertpack.sinks.files import atomic_output
with atomic_output(sys.argv[1]) as stream:
    stream.write(b"partial alert file")
    stream.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def start_writer(path: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "writing"
    return process


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_temp_of_killed_writer_is_removed_by_the_next_write(tmp_path, signum):
    killed = start_writer(tmp_path / "1.avro")
    alive = start_writer(tmp_path / "2.avro")
    try:
        killed.send_signal(signum)
        killed.wait(timeout=10)
        left = temporaries(tmp_path)
        assert len(left) == 2 and not (tmp_path / "1.avro").exists()
        # not ours, and a pid-less temp of an older alertpack that is young: kept
        foreign = tmp_path / ".notes.tmp"
        foreign.write_text("someone else's")
        young_old_style = tmp_path / ".3.avro.abcd1234.tmp"
        young_old_style.write_bytes(b"x")
        old_old_style = tmp_path / ".4.avro.wxyz5678.tmp"
        old_old_style.write_bytes(b"x")
        long_ago = time.time() - STALE_TEMP_SECONDS - 60
        os.utime(old_old_style, (long_ago, long_ago))

        with atomic_output(tmp_path / "5.avro") as stream:
            stream.write(b"complete")

        remaining = temporaries(tmp_path)
        assert f".{killed.pid}." not in "".join(remaining)  # the killed writer's temp is gone
        assert any(f"-{alive.pid}." in name for name in remaining)  # a live writer's stays
        assert foreign.exists() and young_old_style.exists() and not old_old_style.exists()
        assert (tmp_path / "5.avro").read_bytes() == b"complete"
    finally:
        alive.kill()
        alive.wait()
    # later, with that writer dead too, an explicit clean removes its temp
    assert len(clean_stale_temporaries(tmp_path)) == 1
    assert temporaries(tmp_path) == [".3.avro.abcd1234.tmp", ".notes.tmp"]


def test_package_sigkilled_mid_write_leaves_nothing_after_next_run(tmp_path):
    """A real ``package`` killed while writing; the next run cleans its temporary file."""
    out = tmp_path / "alerts"
    command = [sys.executable, "-m", "alertpack", "package", "--sample", "-o", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and temporaries(out):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    process.wait(timeout=30)
    if process.returncode != -signal.SIGKILL:
        pytest.skip("the writer finished before it could be killed mid-write")
    assert temporaries(out)
    assert not list(out.glob("*.avro"))  # never a partial file at the final path
    assert cli_main(["package", "--sample", "-o", str(out)]) == 0
    assert temporaries(out) == [] and len(list(out.glob("*.avro"))) == 1


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_package_checks_output_path_before_the_work(tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory is expected")
    target = blocker if where == "file" else blocker / "alerts"
    started = time.monotonic()
    assert cli_main(["package", "--sample", "-o", str(target)]) == 2
    assert time.monotonic() - started < 5  # refused before packaging
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(blocker) in err and "Traceback" not in err


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_file_size_limit_is_one_clear_error_and_no_partial_file(tmp_path):
    out = tmp_path / "alerts"
    result = subprocess.run(
        [sys.executable, "-m", "alertpack", "package", "--sample", "-o", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "larger than allowed" in result.stderr and str(out) in result.stderr
    assert list(out.iterdir()) == []  # no partial file, no temporary file


@contextlib.contextmanager
def tmpfs(where: Path, options: str):
    """A tmpfs mounted at ``where`` (the test is skipped where mounting is not allowed)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_read_only_output_is_refused_before_the_work(tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as read_only:
        assert cli_main(["package", "--sample", "-o", str(read_only / "alerts")]) == 2
        err = capsys.readouterr().err
        assert "Read-only file system" in err and str(read_only) in err
        assert err.count("\n") == 1


def test_disk_full_is_one_clear_error_and_no_partial_file(tmp_path, capsys):
    with tmpfs(tmp_path / "small", "size=200k") as small:
        out = small / "alerts"
        argv = ["package", "--sample", "--n-sources", "4", "--image-size", "400x400"]
        assert cli_main([*argv, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert "disk is full" in err and str(out) in err and "Traceback" not in err
        assert list(out.iterdir()) == []  # no partial file, no temporary file


# --- a shared, writable directory: links and swaps -----------------------------------------------


def test_a_symbolic_link_at_the_final_path_is_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    victim.chmod(0o600)
    out = tmp_path / "out"
    out.mkdir()
    (out / "1.avro").symlink_to(victim)
    with pytest.raises(OutputError, match="symbolic link"):
        with atomic_output(out / "1.avro") as stream:
            stream.write(b"alert file")
    assert victim.read_bytes() == b"precious" and victim.stat().st_mode & 0o777 == 0o600
    assert temporaries(out) == []


def test_a_temporary_file_swapped_for_a_link_is_neither_chmodded_nor_published(tmp_path):
    # in a writable, non-sticky directory, a link put in place of the temporary file got the
    # victim chmodded to 0644 and renamed into place as the "alert file", reported as written
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    victim.chmod(0o600)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError, match="replaced or removed while it was written"):
        with atomic_output(out / "1.avro") as stream:
            stream.write(b"alert file")
            (temporary,) = temporaries(out)
            (out / temporary).unlink()
            (out / temporary).symlink_to(victim)  # the attacker's swap
    assert victim.read_bytes() == b"precious" and victim.stat().st_mode & 0o777 == 0o600
    assert not (out / "1.avro").exists() and not (out / "1.avro").is_symlink()


@pytest.mark.parametrize(("umask", "mode"), [(0o077, 0o600), (0o002, 0o664), (0o022, 0o644)])
def test_files_get_the_permissions_of_the_umask(tmp_path, umask, mode):
    # they were 0644 whatever the umask
    old = os.umask(umask)
    try:
        with atomic_output(tmp_path / "alerts.avro") as stream:
            stream.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "alerts.avro").stat().st_mode & 0o777 == mode
