"""An output folder filled all at once: Ctrl-C or an error leaves no partial file in it.

    with staged_outputs(out) as stage:
        write_geotiff(stage / "burn_probability.tif", ...)
        (stage / "summary.json").write_text(...)
    # here every file is in `out`, complete

Files are written into a hidden staging folder inside `out` (same file system, so the final
moves are renames); only when the block ends without an exception are they moved into `out`,
replacing older files of the same names. Otherwise the staging folder is deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def staged_outputs(out: str | Path) -> Iterator[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out, prefix=".partial-"))
    try:
        yield stage
        for path in sorted(stage.iterdir()):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_json(path: Path, payload: dict) -> Path:
    """`payload` as indented JSON (numpy scalars as numbers)."""
    path.write_text(json.dumps(payload, indent=2, default=lambda v: v.item() if hasattr(v, "item") else str(v)) + "\n")
    return path
