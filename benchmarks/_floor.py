"""The floor: only the syscalls the reference on-disk layout makes unavoidable.

One allocate+release cycle is: flock the network's lock file, create the IP's
file exclusively and write the owner, write ``last_reserved_ip.0``, unlock;
then flock, unlink the IP's file, unlock. No index, no validation, no crash
safety: nothing a real allocator could do with fewer system calls on this
layout. It is written in Python, like cnicore, so the ratio compares designs,
not languages.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os

__all__ = ["floor_cycles"]


def floor_cycles(network_dir: str, count: int, *, first_ip: str = "10.128.0.2", owner: str = "c") -> None:
    """Run ``count`` allocate+release cycles on the reference layout in ``network_dir``."""
    os.makedirs(network_dir, exist_ok=True)
    lock_fd = os.open(os.path.join(network_dir, "lock"), os.O_RDONLY | os.O_CREAT, 0o750)
    last_path = os.path.join(network_dir, "last_reserved_ip.0")
    ip = int(ipaddress.IPv4Address(first_ip))
    try:
        for i in range(count):
            name = str(ipaddress.IPv4Address(ip + i))
            path = os.path.join(network_dir, name)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                fd = os.open(path, os.O_RDWR | os.O_EXCL | os.O_CREAT, 0o600)
            except FileExistsError:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
                continue
            os.write(fd, f"{owner}-{i}\r\neth0".encode())
            os.close(fd)
            fd = os.open(last_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, name.encode())
            os.close(fd)
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            os.unlink(path)
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
    finally:
        os.close(lock_fd)
