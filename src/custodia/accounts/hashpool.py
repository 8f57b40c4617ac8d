"""Password hashing off the request threads: a pool of argon2id processes beside the server.

`custodia serve` starts the pool (`launch_pool`) beside granian and gives granian's workers its
socket in CUSTODIA_HASH_SOCKET. The pool runs `PASSWORD_HASH_CONCURRENCY` processes (default:
half the cores) at a lower CPU priority than the request threads, so pages keep the cores they
need while logins queue for a hash; at most `PASSWORD_HASH_QUEUE` more hashes wait for one of
them. A hash beyond that is refused at once: the request gets HashingBusy, a 503 with
Retry-After, for the cost of a local socket round trip instead of a hash or a wait. A pool process
that dies (killed, out of memory) takes the hashes it was running with it: those requests get
HashingUnavailable, the same 503, never a pass; the pool replaces its processes for the next one.
Before any of that, each web worker lets only a few sign-ins at a time work towards a hash
(`SignInGate`, at the door: web.middleware.HashingDoorMiddleware).

What runs in the pool is Django's own Argon2PasswordHasher (argon2-cffi, whose verification
compares in constant time) at OWASP's parameters: the same bytes as hashing in the request's
process. The socket sits in the var directory's `run/` (mode 0700) and accepts only its owner.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import Argon2PasswordHasher

logger = logging.getLogger(__name__)

# A password may be as long as a request body (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by default);
# UTF-8 takes at most 4 bytes a character.
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Longest a request thread waits for its answer. The queue bound keeps real waits to a few hashes;
# this only frees the thread if the pool stops answering altogether.
REPLY_TIMEOUT_SECONDS = 10.0
START_TIMEOUT_SECONDS = 30.0
# Added to the pool processes' niceness: under a storm, request threads (and PostgreSQL) get the
# CPU before queued hashes.
POOL_NICENESS = 10
# How long after refusing a hash a full pool asks the door to refuse logins too.
SHED_SECONDS = 1.0
OPERATIONS = frozenset({"encode", "verify"})


class HashingBusy(Exception):
    """No room in the hashing queue: a 503 with Retry-After (web.middleware.BusyMiddleware)."""


class HashingUnavailable(HashingBusy):
    """The pool did not answer or lost the process hashing: the same 503 (fails closed)."""


class Argon2id(Argon2PasswordHasher):
    """Django's argon2id hasher at OWASP's parameters (19 MiB, t=2, p=1), run in this process."""

    time_cost = 2
    memory_cost = 19456
    parallelism = 1


# --- The wire: a 4-byte length, then UTF-8 JSON ----------------------------------------------


def _frame(message: dict[str, Any]) -> bytes:
    # surrogatepass: a str the request decoded is passed on as it is, whatever it holds.
    body = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return struct.pack("!I", len(body)) + body


def _unframe(body: bytes) -> dict[str, Any]:
    message = json.loads(body.decode("utf-8", "surrogatepass"))
    if not isinstance(message, dict):
        raise ValueError("not a message")
    return message


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("the hashing pool closed the connection")
        chunks += chunk
    return bytes(chunks)


# --- In the request's process ---------------------------------------------------------------


def ask(socket_path: str, operation: str, password: str, argument: str) -> bool | str:
    """`encode` (argument: the salt) or `verify` (argument: the stored hash) in the pool.

    Raises HashingBusy when the queue is full, HashingUnavailable when the pool cannot answer,
    and ValueError when argon2id itself refused the input (as it would in this process)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(REPLY_TIMEOUT_SECONDS)
            connection.connect(socket_path)
            connection.sendall(
                _frame({"op": operation, "password": password, "argument": argument})
            )
            (size,) = struct.unpack("!I", _receive_exactly(connection, 4))
            if size > MAX_FRAME_BYTES:
                raise ConnectionError("oversized reply")
            reply = _unframe(_receive_exactly(connection, size))
    except (OSError, ValueError) as error:
        # The error's kind only: nothing of the request (a password) goes to the log.
        logger.error("password hashing pool unreachable: %s", type(error).__name__)
        raise HashingUnavailable from None
    if reply.get("busy"):
        raise HashingBusy
    if reply.get("refused"):
        raise ValueError("argon2id refused this input")
    result = reply.get("result")
    if operation == "verify" and isinstance(result, bool):
        return result
    if operation == "encode" and isinstance(result, str):
        return result
    raise HashingUnavailable


class SignInGate:
    """How many sign-ins (login and signup forms) one web worker works on at once.

    `slots` at a time (by default twice the pool's processes: a worker keeps one ready to hash
    while another hashes); up to `waiting` more wait for a slot, asleep (no CPU, no GIL), for at
    most `wait_seconds`; the rest are refused at once. So a storm of sign-ins costs a worker one
    sign-in's work at a time, whatever its size, and the threads left over keep serving pages;
    a worker's sign-ins reach the pool in turn instead of all at once and being refused there.
    """

    def __init__(self, slots: int, waiting: int, wait_seconds: float) -> None:
        self._slots = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self.max_waiting = waiting
        self.wait_seconds = wait_seconds

    def _wait_for_slot(self) -> bool:
        with self._lock:
            if self._waiting >= self.max_waiting:
                return False
            self._waiting += 1
        try:
            return self._slots.acquire(timeout=self.wait_seconds)
        finally:
            with self._lock:
                self._waiting -= 1

    @contextlib.contextmanager
    def entry(self) -> Iterator[bool]:
        """Whether this sign-in may go on (then it holds a slot until the block ends)."""
        admitted = self._slots.acquire(blocking=False) or self._wait_for_slot()
        try:
            yield admitted
        finally:
            if admitted:
                self._slots.release()


_gates: dict[tuple[int, int, float], SignInGate] = {}
_gates_lock = threading.Lock()


def sign_in_gate(slots: int, waiting: int, wait_seconds: float) -> SignInGate:
    """This process's gate for these limits (one per process: the limits are per worker)."""
    key = (slots, waiting, wait_seconds)
    with _gates_lock:
        if key not in _gates:
            _gates[key] = SignInGate(slots, waiting, wait_seconds)
        return _gates[key]


# --- In a pool process ----------------------------------------------------------------------


def _lower_priority(niceness: int) -> None:
    os.nice(niceness)
    # A Ctrl-C in the terminal reaches the whole group; the pool's owner stops its processes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _hash(operation: str, password: str, argument: str) -> bool | str:
    hasher = Argon2id()
    if operation == "encode":
        return hasher.encode(password, argument)
    return bool(hasher.verify(password, argument))


def _ready() -> int:
    return os.getpid()


# --- The pool's own process -----------------------------------------------------------------


class Pool:
    """Hashes on `workers` processes; at most `queue` more wait; the rest are refused at once."""

    def __init__(self, workers: int, queue: int, niceness: int) -> None:
        self.workers = workers
        self.limit = workers + queue
        self.niceness = niceness
        self.in_flight = 0
        self.last_refusal = float("-inf")
        self.executor = self._new_executor()
        self.restarting: asyncio.Future[list[int]] | None = None

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_lower_priority,
            initargs=(self.niceness,),
        )

    async def start(self) -> list[int]:
        """Start every process now, so the first logins do not wait for them."""
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(self.executor, _ready) for _ in range(self.workers))
            )
        )

    def has_room(self) -> bool:
        """What the door (web.middleware.HashingDoorMiddleware) is told: no room only while the
        pool is full and has refused a hash lately. A full pool alone is the normal state of a
        busy one (logins on their way to the hash keep it fed): refusing those at the door would
        leave it idle. Under a storm it refuses all the time, and the door sheds the rest."""
        shedding = time.monotonic() - self.last_refusal < SHED_SECONDS
        return not (shedding and self.in_flight >= self.limit)

    async def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request's reply."""
        operation, password, argument = (request.get(k) for k in ("op", "password", "argument"))
        if operation == "ping":
            return {"result": "pong"}
        if operation == "room":
            return {"result": self.has_room()}
        if operation not in OPERATIONS or not isinstance(password, str):
            return {"refused": True}
        if not isinstance(argument, str):
            return {"refused": True}
        if self.in_flight >= self.limit:
            self.last_refusal = time.monotonic()
            return {"busy": True}
        self.in_flight += 1
        executor = self.executor
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                executor, _hash, operation, password, argument
            )
        except BrokenProcessPool:
            # A process died mid-hash: every hash it shared the executor with fails closed, and
            # the next request gets fresh processes.
            if self.executor is executor:
                logger.error("a password hashing process died; starting new ones")
                self.executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
                self.restarting = asyncio.ensure_future(self.start())
            return {"error": "unavailable"}
        except Exception:  # noqa: BLE001 - argon2 refused the input: the caller raises ValueError
            return {"refused": True}
        finally:
            self.in_flight -= 1
        return {"result": result}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: one request, one reply."""
        try:
            (size,) = struct.unpack("!I", await reader.readexactly(4))
            if size > MAX_FRAME_BYTES:
                reply: dict[str, Any] = {"refused": True}
            else:
                reply = await self.run(_unframe(await reader.readexactly(size)))
            writer.write(_frame(reply))
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass  # the client went away or sent garbage: nothing to answer
        except asyncio.CancelledError:
            return  # the pool is stopping: the client's thread sees the connection close
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def serve_pool(socket_path: Path, workers: int, queue: int, niceness: int) -> None:
    """Run the pool on `socket_path` until SIGTERM or SIGINT."""
    pool = Pool(workers, queue, niceness)
    await pool.start()
    socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    os.umask(0o077)
    server = await asyncio.start_unix_server(pool.handle, path=str(socket_path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with server:
            await stop.wait()
    finally:
        socket_path.unlink(missing_ok=True)
        pool.executor.shutdown(wait=True, cancel_futures=True)


def main(argv: list[str] | None = None) -> None:
    """`python -c 'from custodia.accounts.hashpool import main; main()' --socket PATH ...`."""
    parser = argparse.ArgumentParser(prog="custodia-hashpool")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--niceness", type=int, default=POOL_NICENESS)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="hashpool: %(message)s")
    asyncio.run(serve_pool(options.socket, options.workers, options.queue, options.niceness))


# --- Started by `custodia serve` ------------------------------------------------------------


def pool_command(socket_path: Path, workers: int, queue: int) -> list[str]:
    """The command line of a pool process (no Django settings needed)."""
    return [
        sys.executable,
        "-c",
        "from custodia.accounts.hashpool import main; main()",
        "--socket",
        str(socket_path),
        "--workers",
        str(workers),
        "--queue",
        str(queue),
    ]


def socket_path_for(run_dir: Path, owner_pid: int) -> Path:
    """A socket per `custodia serve`, so servers sharing a var directory keep their own pools."""
    return run_dir / "hashpool" / f"pool-{owner_pid}.sock"


def remove_stale_sockets(directory: Path) -> None:
    """Sockets left by a `custodia serve` that was killed (its pid no longer runs)."""
    for path in directory.glob("pool-*.sock"):
        try:
            os.kill(int(path.stem.removeprefix("pool-")), 0)
        except ValueError:
            continue
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            continue


def launch_pool(
    run_dir: Path, workers: int, queue: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the pool for this `custodia serve`; (process, socket). It answers once
    `wait_for_pool` returns True: until then a hash gets HashingUnavailable (a 503)."""
    path = socket_path_for(run_dir, os.getpid())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_stale_sockets(path.parent)
    process = subprocess.Popen(pool_command(path, workers, queue), env=env)  # noqa: S603
    return process, path


def wait_for_pool(process: subprocess.Popen[bytes], path: Path) -> bool:
    """Whether the pool answers within START_TIMEOUT_SECONDS (False if it exited)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if ping(path):
                return True
        time.sleep(0.05)
    return False


def start_pool(
    run_dir: Path, workers: int, queue: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    """`launch_pool` and `wait_for_pool`: a pool that answers, or RuntimeError."""
    process, path = launch_pool(run_dir, workers, queue, env)
    if not wait_for_pool(process, path):
        process.kill()
        process.wait()
        raise RuntimeError("the password hashing pool did not start")
    return process, path


def _query(socket_path: str | Path, operation: str) -> Any:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(2)
        connection.connect(str(socket_path))
        connection.sendall(_frame({"op": operation}))
        (size,) = struct.unpack("!I", _receive_exactly(connection, 4))
        if size > MAX_FRAME_BYTES:
            raise ConnectionError("oversized reply")
        return _unframe(_receive_exactly(connection, size)).get("result")


def ping(socket_path: Path) -> bool:
    """Whether a pool answers on `socket_path`."""
    return bool(_query(socket_path, "ping") == "pong")


def has_room(socket_path: str) -> bool:
    """Whether the pool would take a hash now (a snapshot: the hash itself may still be refused).
    An unreachable pool has none."""
    try:
        return _query(socket_path, "room") is True
    except (OSError, ValueError):
        return False
