import os
from typing import Any

import pandas as pd
import streamlit as st
from fairpriv_app.common import (
    GROUP_DEFAULTS,
    SOURCES,
    TABLE_TYPES,
    app_message,
    app_words,
    commit_data,
    frame_hash,
    read_upload,
    show_error,
    start_with,
)

from audit import DataError, Dataset, builtin_table, group_split_counts, load_dataset, split_dataset
from audit import defaults as d

#: Column names that usually hold the target or a sensitive attribute (first match wins).
TARGET_NAMES = ("y", "label", "target", "income", "class", "outcome", "two_year_recid")
SENSITIVE_NAMES = ("group", "sex", "gender", "race", "ethnicity", "age_group")
#: Below this many rows per split the app does not offer a lower minimum as the fix.
MEASURABLE_ROWS = 10


@st.cache_resource(max_entries=8, show_spinner=False)
def _builtin(name: str, path: str, rows: int) -> Any:
    return builtin_table(name, path=path or None, n_rows=rows or None)


@st.cache_resource(max_entries=8, show_spinner="Checking the data...")
def _checked(_frame: pd.DataFrame, data_hash: str, target: str, sensitive: tuple[str, ...],
             positive: str | None, name: str) -> Dataset:
    return load_dataset(_frame, target=target, sensitive=list(sensitive), positive_label=positive,
                        name=name)


def _first(names: tuple[str, ...], columns: list[str]) -> str | None:
    lowered = {str(c).lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def _guess_target(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    named = _first(TARGET_NAMES, columns)
    if named is not None:
        return named
    binary = [c for c in columns if frame[c].nunique(dropna=True) == 2]
    return binary[-1] if binary else columns[-1]


def _start_columns(identity: str, columns: list[str], target: str, sensitive: list[str]) -> None:
    """Start the column pickers on these choices when the data changes, never after."""
    if st.session_state.get("columns_of") == identity and st.session_state.get("target") in columns:
        return
    st.session_state["columns_of"] = identity
    st.session_state["target"] = target
    st.session_state["sensitive"] = sensitive


st.title("1. Data")
st.write("Bring a table with one row per person: a yes/no **target** the model predicts, and the "
         "**sensitive** column(s) that define the groups to compare (for example sex or race). "
         "Every other column is used as a model input.")
notice = st.session_state.pop("data_notice", None)
if notice:
    st.success(notice)
start_with({"source": SOURCES[0], "syn_rows": 5_000,
            "adult_path": os.environ.get("FAIRPRIV_ADULT_PATH", ""), **GROUP_DEFAULTS})
source = st.radio("Source", SOURCES, horizontal=True, key="source")
frame: pd.DataFrame | None = None
name = ""
defaults: tuple[str, list[str]] | None = None
try:
    if source == SOURCES[0]:
        up = st.file_uploader("CSV, TSV, .data or Parquet file", type=TABLE_TYPES, key="upload")
        if up is not None:
            frame, name = read_upload(up.name, up.getvalue()), up.name
        elif st.session_state.get("frame_source") == SOURCES[0]:
            # The uploader forgets its file when the page is left; the data in use stays.
            frame, name = st.session_state["frame"], st.session_state["data_label"]
            st.caption(f"In use: {name}, uploaded earlier. Upload a file to replace it.")
    elif source == SOURCES[1]:
        rows = st.number_input("Rows", 500, 200_000, step=500, key="syn_rows")
        table = _builtin("synthetic", "", int(rows))
        frame, name, defaults = table.frame, "demo data (synthetic)", (table.target, list(table.sensitive))
    else:
        path = st.text_input("Path of adult.data on the server", key="adult_path",
                             help="The UCI Adult file (adult.data or adult.test) on the machine "
                                  "that runs the app; set FAIRPRIV_ADULT_PATH to fill this in.")
        if path:
            table = _builtin("adult", path, 0)
            frame, name, defaults = table.frame, os.path.basename(path), (table.target, list(table.sensitive))
except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
    show_error(exc, page="Data")

if frame is not None:
    columns = [str(c) for c in frame.columns]
    if list(frame.columns) != columns:
        frame = frame.set_axis(columns, axis=1)
    if defaults is None:
        guess = _guess_target(frame)
        named = _first(SENSITIVE_NAMES, [c for c in columns if c != guess])
        defaults = (guess, [named] if named else [])
    _start_columns(f"{name}|{len(frame)}|{columns}", columns, *defaults)
    st.caption(f"{name}: {len(frame):,} rows, {frame.shape[1]} columns")
    st.dataframe(frame.head(20), width="stretch", height=240)
    c1, c2, c3 = st.columns([1, 2, 1])
    target = c1.selectbox("Target column (yes/no)", columns, key="target",
                          help="What the model predicts; it must have exactly two values.")
    # A column just chosen as the target cannot stay a sensitive one.
    st.session_state["sensitive"] = [c for c in st.session_state.get("sensitive") or [] if c != target]
    sensitive = c2.multiselect("Sensitive column(s)", [c for c in columns if c != target],
                               key="sensitive",
                               help="The groups to compare; several columns give their "
                                    "combinations (e.g. 'Female|Black').")
    positive = c3.text_input("Positive label (optional)", key="positive_label",
                             help="Which target value counts as the positive outcome (e.g. "
                                  "'>50K'); by default 1, True or the second value in order.")
    dataset: Dataset | None = None
    if sensitive or len(columns) == 1:  # one column: the engine says why (e.g. the separator)
        try:
            dataset = _checked(frame, frame_hash(frame), target, tuple(sensitive), positive or None, name)
        except Exception as exc:  # noqa: BLE001
            show_error(exc, page="Data")
    else:
        st.info("Choose at least one sensitive column: the audit compares the groups it defines.")

    ready = False
    if dataset is not None:
        for note in dataset.notes:
            st.info(app_words(note))
        st.subheader("Groups")
        minimum = int(st.session_state.get("min_group_rows", d.DEFAULT_MIN_GROUP_ROWS))
        counts = group_split_counts(dataset, min_group_rows=minimum)
        too_small = counts.index[counts["too_small"]].tolist()
        shown = counts.rename(columns={"train": "train rows", "val": "validation rows",
                                       "test": "test rows", "too_small": "too small"})
        st.dataframe(shown, width="content")
        if too_small:
            st.warning(
                f"{len(too_small)} group(s) have fewer than {minimum} rows in a split, too few to "
                "measure their error: " + "; ".join(
                    f"'{g}' ({int(counts.loc[g, ['train', 'val', 'test']].sum())} rows)"
                    for g in too_small)
                + (". They are merged below." if st.session_state.get("merge_small") else
                   ". Merge them into one group called 'other', lower the minimum, or choose "
                   "coarser sensitive columns."))
        with st.expander("Small groups", expanded=bool(too_small)):
            m1, m2 = st.columns(2)
            m1.checkbox("Merge small groups", key="merge_small",
                        help="Audit the groups that are too small together, as one group 'other'.")
            m2.number_input("Minimum rows per group in each split", 1, 10_000, key="min_group_rows",
                            help="Each group needs this many rows in the training, validation and "
                                 f"test splits (default {d.DEFAULT_MIN_GROUP_ROWS}); below ~20 its "
                                 "error rate is very uncertain.")
        try:
            splits = split_dataset(dataset, min_group_rows=minimum,
                                   small_groups="merge" if st.session_state.get("merge_small") else "error")
            ready = True
            if splits.merged:
                sizes = splits.counts().sum(axis=1)
                merged_label = next(g for g in sizes.index if g not in set(dataset.groups))
                st.success("The audit will compare: " + ", ".join(f"'{g}' ({n})" for g, n in sizes.items())
                           + f", where '{merged_label}' is "
                           + ", ".join(repr(g) for g in splits.merged) + " together.")
        except DataError as exc:
            if not (too_small and not st.session_state.get("merge_small")):  # said just above
                st.error(app_message(exc, page="Data"))
            workable = (exc.fix or {}).get("min_group_rows")
            if workable and workable < MEASURABLE_ROWS:
                st.info(f"A minimum of {workable} would let the audit run, but an error rate measured "
                        f"on fewer than {MEASURABLE_ROWS} rows says next to nothing: choose coarser "
                        "sensitive columns, or leave these groups' rows out of the file.")
            elif workable:
                st.button(f"Use minimum {workable} and merge", key="use_workable",
                          on_click=lambda: st.session_state.update(min_group_rows=workable,
                                                                   merge_small=True))
    if st.button("Use this data", type="primary", key="use_data", disabled=not ready):
        assert dataset is not None
        commit_data(frame, {"target": target, "sensitive": list(sensitive),
                            "positive_label": positive or None, "name": name}, name, source)
        st.success(f"Ready: {dataset.n_rows:,} rows of {name}, groups " + ", ".join(
            f"{g} ({n})" for g, n in dataset.group_counts().items()) + ". Next: Setup.")
