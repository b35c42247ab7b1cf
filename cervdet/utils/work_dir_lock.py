"""A lock file that keeps two trainings out of one work dir.

Two runs writing one work dir overwrite each other's checkpoints and
``last_checkpoint``. :class:`WorkDirLock` creates ``<work_dir>/.train.lock``
(atomically: ``O_CREAT | O_EXCL``) holding the owner's pid, host and start
time. A second run refuses with a message naming the owner; a lock whose
owner is dead (same host, pid gone) is taken over with a note.
"""
import json
import os
import os.path as osp
import socket
import sys
import time
from typing import Callable, Optional

LOCK_NAME = '.train.lock'


class WorkDirLockedError(RuntimeError):
    """The work dir is in use by another run."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def read_lock(work_dir: str) -> Optional[dict]:
    """The owner recorded in ``work_dir``'s lock (``{}`` if unreadable),
    None when there is no lock."""
    path = osp.join(work_dir, LOCK_NAME)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def lock_state(owner: Optional[dict]) -> str:
    """``'free'``, ``'stale'`` (owner dead on this host) or ``'held'``."""
    if owner is None:
        return 'free'
    if owner.get('host') == socket.gethostname() and \
            isinstance(owner.get('pid'), int) and \
            not _pid_alive(owner['pid']):
        return 'stale'
    return 'held'


def describe_owner(work_dir: str, owner: dict) -> str:
    if not owner:
        return (f'{osp.join(work_dir, LOCK_NAME)} exists but is unreadable '
                '(a run is starting, or one died while writing it)')
    return (f'pid {owner.get("pid")} on host {owner.get("host")} '
            f'(started {owner.get("started")}: {owner.get("command", "?")})')


def held_message(work_dir: str, owner: dict) -> str:
    return (f'work dir {work_dir} is in use by another training: '
            f'{describe_owner(work_dir, owner)}. Two runs in one work dir '
            'overwrite each other\'s checkpoints. Wait for it to end, or '
            'train into another --work-dir. If no such run exists (e.g. it '
            f'ran on another machine and died), delete '
            f'{osp.join(work_dir, LOCK_NAME)}.')


class WorkDirLock:
    """Exclusive use of a work dir by one run (one process: rank 0).

    Args:
        work_dir (str): The folder to lock (created if missing).
        note (callable): Receives the message when a stale lock is taken
            over (default: print to stderr).

    Raises:
        WorkDirLockedError: From :meth:`acquire` when a live run (or one on
            another host) holds the lock.
    """

    def __init__(self, work_dir: str,
                 note: Optional[Callable[[str], None]] = None) -> None:
        self.work_dir = str(work_dir)
        self.path = osp.join(self.work_dir, LOCK_NAME)
        self.note = note or (lambda m: print(m, file=sys.stderr, flush=True))
        self.owner = dict(pid=os.getpid(), host=socket.gethostname(),
                          started=time.strftime('%Y-%m-%d %H:%M:%S'),
                          command=' '.join(sys.argv)[:300])
        self.held = False

    def acquire(self) -> 'WorkDirLock':
        os.makedirs(self.work_dir, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644)
            except FileExistsError:
                owner = read_lock(self.work_dir)
                state = lock_state(owner)
                if state == 'free':  # released meanwhile
                    continue
                if state == 'held':
                    raise WorkDirLockedError(
                        held_message(self.work_dir, owner or {}))
                self.note(f'{self.path}: taking over the lock of '
                          f'{describe_owner(self.work_dir, owner)}, which '
                          'is no longer running')
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(self.owner, f)
            self.held = True
            return self
        raise WorkDirLockedError(held_message(
            self.work_dir, read_lock(self.work_dir) or {}))

    def release(self) -> None:
        """Remove the lock if it is still this run's."""
        if not self.held:
            return
        owner = read_lock(self.work_dir)
        if owner and owner.get('pid') == self.owner['pid'] and \
                owner.get('host') == self.owner['host']:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self.held = False

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ['WorkDirLock', 'WorkDirLockedError', 'read_lock', 'lock_state',
           'held_message', 'LOCK_NAME']
