"""Shared helpers of the fairpriv app: session state, upload limits, cached calls.

Every computation is an ``audit``/``reports`` call; this module only moves data
between widgets and those calls. Uploads are parsed from memory (or a temporary
directory removed at once); nothing uploaded is ever unpickled or executed.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audit import AuditConfig, AuditResult, FairprivError, load_dataset, read_table, run_audit

MAX_UPLOAD_MB = float(os.environ.get("FAIRPRIV_MAX_UPLOAD_MB", "200"))
MAX_ROWS = int(os.environ.get("FAIRPRIV_MAX_ROWS", "1000000"))
BUILTINS = ("synthetic", "adult (from a path)")


def read_upload(name: str, data: bytes) -> pd.DataFrame:
    """Parse uploaded bytes as CSV/TSV/Parquet with fairpriv's reader; enforce the limits."""
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise FairprivError(
            f"'{name}' is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_MB:g} MB "
            "(set FAIRPRIV_MAX_UPLOAD_MB to change it).")
    suffix = Path(name).suffix.lower()
    if suffix in (".pkl", ".pickle", ".joblib", ".npy", ".pt"):
        raise FairprivError(f"'{name}': pickled files are never loaded; upload CSV or Parquet.")
    # The reader works on paths: a private temporary directory, removed right away.
    with tempfile.TemporaryDirectory(prefix="fairpriv-upload-") as tmp:
        path = Path(tmp) / ("upload" + (suffix if suffix else ".csv"))
        path.write_bytes(data)
        try:
            frame = read_table(path)
        except FairprivError as exc:
            # Name the user's file, not the temporary copy.
            raise type(exc)(str(exc).replace(str(path), name)) from None
    if len(frame) > MAX_ROWS:
        raise FairprivError(f"'{name}' has {len(frame)} rows; the limit is {MAX_ROWS} "
                            "(set FAIRPRIV_MAX_ROWS to change it).")
    return frame


def frame_hash(frame: pd.DataFrame) -> str:
    """Content hash of a frame: values, index, column names and dtypes."""
    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).values.tobytes())
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    return h.hexdigest()[:16]


#: Finished audits kept per server process (oldest dropped first).
MAX_STORED_RESULTS = 32


@st.cache_resource
def _result_store() -> dict[str, str]:
    """Finished audits shared by all sessions: cache key -> results JSON (plain text)."""
    return {}


def cached_audit(frame: pd.DataFrame, data_hash: str, load_kwargs_json: str, config_json: str,
                 progress: Any = None) -> str:
    """Run (or reuse) an audit, keyed by the data hash and the JSON of the options.

    ``progress`` receives audit.ProgressEvent objects while a new audit runs.
    """
    import json

    key = hashlib.sha256(f"{data_hash}|{load_kwargs_json}|{config_json}".encode()).hexdigest()
    store = _result_store()
    if key not in store:
        dataset = load_dataset(frame, **json.loads(load_kwargs_json))
        config = AuditConfig.from_dict(json.loads(config_json))
        store[key] = run_audit(dataset, config, progress=progress).to_json()
        while len(store) > MAX_STORED_RESULTS:
            store.pop(next(iter(store)))
    return store[key]


def result() -> AuditResult | None:
    text = st.session_state.get("result_json")
    return None if text is None else AuditResult.from_json(text)


def show_error(exc: BaseException) -> None:
    """User errors as a message; anything else as a short message, never a traceback."""
    if isinstance(exc, FairprivError):
        st.error(str(exc))
    else:
        st.error(f"Something went wrong ({type(exc).__name__}: {exc}). Check the inputs and try again.")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def state(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def keep_result(res: AuditResult) -> None:
    """Store a finished audit for the Results and Report pages and say so."""
    st.session_state["result_json"] = res.to_json()
    st.code(res.summary(), language=None)
    st.success("Done: see Results and Report.")
