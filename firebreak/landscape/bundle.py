"""The native landscape bundle: one compressed, versioned ``.npz`` per landscape.

Keys: the eight layers (`LAYERS`), ``nodata`` (bool), ``cell_size`` (m), ``format_version``
and ``metadata_json`` (source, credit, crs, transform, window). Loaded with
``allow_pickle=False``: a bundle holds arrays and strings only.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .core import LAYERS, Landscape, LandscapeError

FORMAT_VERSION = 1


def save_npz(landscape: Landscape, path: str | Path) -> Path:
    """Write `landscape` to `path` atomically (temp file + rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(landscape, name) for name in LAYERS}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz.tmp", delete=False) as tmp:
        np.savez_compressed(
            tmp,
            **arrays,
            nodata=landscape.nodata,
            cell_size=np.float64(landscape.cell_size),
            format_version=np.int64(FORMAT_VERSION),
            metadata_json=np.array(json.dumps(dict(landscape.metadata))),
        )
    os.replace(tmp.name, path)
    return path


def load_npz(path: str | Path) -> Landscape:
    """Read a bundle written by `save_npz`; every problem is a `LandscapeError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LandscapeError(f"{path}: no such file. Write bundles with firebreak.landscape.save_npz or "
                             "`python -m firebreak.landscape convert SRC OUT.npz`.")
    try:
        with np.load(path, allow_pickle=False) as bundle:
            contents = {key: bundle[key] for key in bundle.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise LandscapeError(f"{path}: not a readable .npz bundle ({err}). Re-create it with save_npz.") from None
    version = int(contents.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise LandscapeError(f"{path}: bundle format version {version}, this firebreak reads {FORMAT_VERSION}. "
                             "Re-create it with save_npz from the source rasters.")
    missing = [key for key in LAYERS + ("nodata", "cell_size", "metadata_json") if key not in contents]
    if missing:
        raise LandscapeError(f"{path}: bundle lacks key(s) {missing}. Re-create it with save_npz.")
    metadata = json.loads(str(contents["metadata_json"]))
    metadata["source"] = metadata.get("source") or str(path)
    metadata["bundle"] = str(path)
    return Landscape(
        **{name: contents[name] for name in LAYERS},
        cell_size=float(contents["cell_size"]),
        nodata=contents["nodata"],
        metadata=metadata,
    )
