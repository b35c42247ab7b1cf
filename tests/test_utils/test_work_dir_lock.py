"""One training per work dir: the lock refuses a live owner and takes over
a dead one's."""
import json
import os
import socket
import subprocess
import sys

import pytest

from cervdet.utils.work_dir_lock import (
    LOCK_NAME,
    WorkDirLock,
    WorkDirLockedError,
    read_lock,
)


def test_second_owner_refused_until_released(tmp_path):
    first = WorkDirLock(str(tmp_path)).acquire()
    owner = read_lock(str(tmp_path))
    assert owner['pid'] == os.getpid()
    assert owner['host'] == socket.gethostname()
    with pytest.raises(WorkDirLockedError,
                       match=rf'in use by another training: pid '
                       rf'{os.getpid()} on host'):
        WorkDirLock(str(tmp_path)).acquire()
    first.release()
    assert not (tmp_path / LOCK_NAME).exists()
    with WorkDirLock(str(tmp_path)):
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_taken_over_with_a_note(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps(dict(
        pid=dead.pid, host=socket.gethostname(), started='earlier')))
    notes = []
    lock = WorkDirLock(str(tmp_path), note=notes.append).acquire()
    assert len(notes) == 1 and 'no longer running' in notes[0]
    assert str(dead.pid) in notes[0]
    assert read_lock(str(tmp_path))['pid'] == os.getpid()
    lock.release()


def test_lock_of_another_host_is_not_guessed_stale(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps(dict(
        pid=1, host='some-other-node', started='earlier')))
    with pytest.raises(WorkDirLockedError, match='delete'):
        WorkDirLock(str(tmp_path)).acquire()
    # nothing of the other run's lock was changed
    assert read_lock(str(tmp_path))['host'] == 'some-other-node'


def test_release_leaves_a_lock_taken_over_by_another_run(tmp_path):
    lock = WorkDirLock(str(tmp_path)).acquire()
    (tmp_path / LOCK_NAME).write_text(json.dumps(dict(
        pid=os.getpid() + 1, host='x')))
    lock.release()
    assert (tmp_path / LOCK_NAME).exists()
