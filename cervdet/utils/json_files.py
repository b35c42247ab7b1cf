"""JSON output files written atomically."""
import json
import os
from pathlib import Path
from typing import Any, Union


def atomic_json(path: Union[str, Path], obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as JSON through a temporary file renamed at the end (a
    reader never sees half a file; an interrupted write leaves the old one).

    Args:
        path (str | Path): The JSON file.
        obj: What ``json.dump`` writes.
        indent (int): ``json.dump`` indent. Defaults to 2.
    """
    path = Path(path)
    tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=indent)
    os.replace(tmp, path)


__all__ = ['atomic_json']
