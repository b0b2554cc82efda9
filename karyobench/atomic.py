"""Atomic file writes: a reader (or a re-run after ``kill -9``) never sees a half file."""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

from karyobench.errors import KaryobenchError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()


def write_bytes(path: Path, data: bytes) -> Path:
    """Write a temp file beside ``path``, fsync, then ``os.replace`` it over ``path``."""
    path = Path(path)
    temp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, _FILE_MODE)  # mkstemp makes 0600; results are meant to be shared
        os.replace(temp_name, path)
    except OSError as err:
        if temp_name:
            Path(temp_name).unlink(missing_ok=True)
        if err.errno == errno.ENOSPC:
            raise KaryobenchError(f"disk full while writing '{path}'; free space and re-run "
                                  "the same command: finished folds are kept.") from None
        raise KaryobenchError(f"cannot write '{path}': {err.strerror or err}.") from None
    except BaseException:
        if temp_name:
            Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_parquet(path: Path, frame) -> Path:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return write_bytes(path, buffer.getvalue())
