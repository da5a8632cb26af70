"""Shared helpers of the fairpriv app: session state, upload limits, the audit job, errors.

Every computation is an ``audit``/``reports`` call; this module only moves data
between widgets and those calls. Uploads are parsed from memory (or a temporary
directory removed at once); nothing uploaded is ever unpickled or executed.

Two things outlive a page: the user's settings (:func:`keep_settings` keeps every
widget value in :data:`KEPT`, which Streamlit would otherwise forget when the page
that shows the widget is left) and the running audit (:class:`AuditJob`, a thread
of the session, so that moving to another page does not stop it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audit import (
    ARM_KINDS,
    AuditConfig,
    AuditResult,
    ConfigError,
    FairprivError,
    MissingFeaturesConfig,
    PrivacyAuditConfig,
    ProgressEvent,
    TrainingConfig,
    format_duration,
    load_dataset,
    make_arm,
    parse_hidden_layers,
    parse_missing_rates,
    parse_number_list,
    read_table,
    run_audit,
)
from audit import defaults as d

MAX_UPLOAD_MB = float(os.environ.get("FAIRPRIV_MAX_UPLOAD_MB", "200"))
MAX_ROWS = int(os.environ.get("FAIRPRIV_MAX_ROWS", "1000000"))
#: File types the uploaders accept (the engine's reader takes all of them).
TABLE_TYPES = ["csv", "tsv", "txt", "data", "parquet"]

# --------------------------------------------------------------------------- settings

#: Setup's widgets and their starting values: the engine's defaults.
SETUP_DEFAULTS: dict[str, Any] = {
    "arms": list(ARM_KINDS),
    "p": d.DEFAULT_DROPOUT,
    "epsilon": d.DEFAULT_EPSILON,
    "delta": "",
    "seeds": d.DEFAULT_SEEDS,
    "epochs": d.DEFAULT_EPOCHS,
    "hidden": ",".join(str(w) for w in d.DEFAULT_HIDDEN),
    "trainer": d.DEFAULT_TRAINER,
    "device": d.DEFAULT_DEVICE,
    "mia": d.DEFAULT_MIA,
    "canaries": d.DEFAULT_CANARIES,
    "canary_kind": d.DEFAULT_CANARY_KIND,
    "white_box": d.DEFAULT_WHITE_BOX,
    "ci_level": d.DEFAULT_CI_LEVEL,
    "simultaneous_ci": d.DEFAULT_SIMULTANEOUS_CI,
    "missing_on": False,
    "missing_rates": "",
    "missing_grid": ",".join(f"{p:g}" for p in d.DEFAULT_MISSING_GRID),
    "missing_train_grid": ",".join(f"{p:g}" for p in d.DEFAULT_MISSING_TRAIN_GRID),
}
#: The confidence levels Setup offers.
CI_LEVELS = (0.9, 0.95, 0.99)
#: The Data page's group options (they go into the audit's configuration).
GROUP_DEFAULTS: dict[str, Any] = {
    "merge_small": d.DEFAULT_SMALL_GROUPS == "merge",
    "min_group_rows": d.DEFAULT_MIN_GROUP_ROWS,
}
#: Widget keys whose values must survive leaving their page.
KEPT = (*SETUP_DEFAULTS, *GROUP_DEFAULTS, "source", "syn_rows", "adult_path", "target",
        "sensitive", "positive_label", "sweep_arms", "sweep_epsilons", "sweep_budgets")
#: Session-state key of the copy of :data:`KEPT`'s values (no widget uses it).
KEPT_COPY = "kept_settings"


def keep_settings() -> None:
    """Keep the kept widgets' values across pages; run before any page.

    Streamlit drops a widget's value once a run does not draw the widget; writing
    the value back as plain session state keeps it (the documented way to keep
    widget values across pages). Widgets therefore never pass a default of their
    own: :func:`start_with` puts it in session state first.

    That is not enough while an audit runs: the progress panel reruns itself every
    second, and such a fragment-only rerun drops every widget value its page does not
    draw, written back or not (streamlit/streamlit#10805); where Streamlit still holds
    an older value under the same key (one written before its widget was first
    drawn), that older value reappears. So each value is also copied to a key no
    widget uses (:data:`KEPT_COPY`), which survives, and is written back afresh every
    run (deleted first, which clears any older value): a value the fragment dropped
    is then simply missing, and put back from the copy.
    """
    copy = st.session_state.setdefault(KEPT_COPY, {})
    for key in KEPT:
        if key in st.session_state:
            value = st.session_state[key]
            del st.session_state[key]
        elif key in copy:
            value = copy[key]
        else:
            continue
        st.session_state[key] = copy[key] = value


def remember_settings() -> None:
    """Copy the kept values as they are now (run after the page too: pages set some)."""
    copy = st.session_state.setdefault(KEPT_COPY, {})
    for key in KEPT:
        if key in st.session_state:
            copy[key] = st.session_state[key]


def start_with(defaults: Mapping[str, Any]) -> None:
    """Give each widget key in ``defaults`` its starting value, once per session."""
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def _delta(text: str) -> float | None:
    if not str(text).strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"delta must be a number such as 1e-6 (or empty for the default), not {text!r}.",
            param="delta") from None


def arm_params(kind: str, p: float) -> dict[str, float]:
    """Setup's settings for one arm kind; other kinds take their own defaults."""
    return {"uniform_dropout": {"p": p}, "group_dropout": {"budget": p}}.get(kind, {})


def settings(state: Any = None) -> dict[str, Any]:
    """The Setup and group settings in ``state`` (default: this session's), defaults where unset."""
    state = st.session_state if state is None else state
    return {key: state[key] if key in state else default  # noqa: SIM401 - AppTest's state has no get
            for key, default in {**SETUP_DEFAULTS, **GROUP_DEFAULTS}.items()}


def build_config(values: Mapping[str, Any]) -> AuditConfig:
    """The audit configuration for Setup's ``values`` (raises FairprivError if invalid)."""
    if not values["arms"]:
        raise ConfigError("choose at least one arm.", param="arms")
    p = float(values["p"])
    return AuditConfig(
        arms=tuple(make_arm(kind, **arm_params(kind, p)) for kind in values["arms"]),
        seeds=int(values["seeds"]), epsilon=float(values["epsilon"]), delta=_delta(values["delta"]),
        training=TrainingConfig(hidden=parse_hidden_layers(values["hidden"]),
                                epochs=int(values["epochs"])),
        trainer=values["trainer"], device=values["device"],
        min_group_rows=int(values["min_group_rows"]),
        small_groups="merge" if values["merge_small"] else "error",
        ci_level=float(values["ci_level"]), simultaneous_ci=bool(values["simultaneous_ci"]),
        privacy_audit=PrivacyAuditConfig(mia=values["mia"], canaries=int(values["canaries"]),
                                         canary_kind=values["canary_kind"],
                                         white_box=bool(values["white_box"])),
        missing=_missing(values))


def _missing(values: Mapping[str, Any]) -> MissingFeaturesConfig | None:
    """Setup's missing-feature settings (None when the box is not ticked)."""
    if not values["missing_on"]:
        return None
    rates = str(values["missing_rates"]).strip()
    return MissingFeaturesConfig(
        rates=parse_missing_rates(rates) if rates else None,
        grid=parse_number_list(values["missing_grid"], "missing_grid"),
        train_grid=parse_number_list(values["missing_train_grid"], "missing_train_grid"))


# --------------------------------------------------------------------------- uploads


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
            raise type(exc)(str(exc).replace(str(path), name).replace(path.name, name)) from None
    if len(frame) > MAX_ROWS:
        raise FairprivError(f"'{name}' has {len(frame)} rows; the limit is {MAX_ROWS} "
                            "(set FAIRPRIV_MAX_ROWS to change it).")
    return frame


def frame_hash(frame: pd.DataFrame) -> str:
    """Content hash of a frame: values, index, column names and dtypes."""
    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).values.tobytes())
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    return h.hexdigest()[:16]


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- errors

#: Engine parameter -> (the app's label for it, the page where it is set). Parameters
#: the app has no control for are left out; advice about them is dropped.
APP_LABELS: dict[str, tuple[str, str]] = {
    "target": ("Target column", "Data"),
    "sensitive": ("Sensitive column(s)", "Data"),
    "positive_label": ("Positive label", "Data"),
    "source": ("Source", "Data"),
    "path": ("Path of adult.data on the server", "Data"),
    "small_groups": ("Merge small groups", "Data"),
    "min_group_rows": ("Minimum rows per group in each split", "Data"),
    "arms": ("Arms", "Setup"),
    "kind": ("Arms", "Setup"),
    "p": ("Uniform dropout rate p", "Setup"),
    "budget": ("Uniform dropout rate p", "Setup"),
    "epsilon": ("DP-SGD target epsilon", "Setup"),
    "delta": ("DP-SGD delta", "Setup"),
    "seeds": ("Seeds", "Setup"),
    "epochs": ("Epochs", "Setup"),
    "hidden": ("Hidden layers", "Setup"),
    "trainer": ("Trainer", "Setup"),
    "device": ("Device", "Setup"),
    "mia": ("Membership inference", "Setup"),
    "canaries": ("Canaries", "Setup"),
    "canary_kind": ("Canary labels", "Setup"),
    "white_box": ("White-box audit", "Setup"),
    "ci_level": ("Confidence level", "Setup"),
    "simultaneous_ci": ("Simultaneous across groups", "Setup"),
    "missing": ("Measure missing features", "Setup"),
    "missing_rates": ("Missing rate per group", "Setup"),
    "missing_grid": ("Missing rates p_test for every group", "Setup"),
    "missing_train_grid": ("Training dropout rates p_train", "Setup"),
    "epsilons": ("Epsilons", "Sweep"),
    "budgets": ("Dropout budgets", "Sweep"),
    "y_true": ("True label", "Audit an existing model"),
    "y_pred": ("Prediction", "Audit an existing model"),
    "y_score": ("Score", "Audit an existing model"),
    "member": ("Membership", "Audit an existing model"),
}
#: How the app spells a fix the engine suggests as ``param=value``.
APP_FIXES: dict[tuple[str, object], str] = {
    ("small_groups", "merge"): "tick 'Merge small groups' on the Data page",
}
_KEYWORD = re.compile(
    r"(?<![\w.-])([a-z_][a-z0-9_]*)=('(?:[^'\\]|\\.)*'|-?\d[\w.+-]*|(?=[\s,.;:)]|$))")
_PROSE = re.compile(r"(?<![\w'\"-])(min_group_rows|positive_label|small_groups)(?![\w'\"(=-])")
_VERB = re.compile(r"\b(?:pass|set|use)( '[^']+')")
#: A Python spelling ``name=`` or ``name=value`` left after the labels were put in; quoted
#: text (the user's column names and values, which may hold '=') is masked first.
_NAMES_A_PARAMETER = re.compile(r"(?<![\w.-])[a-z_][a-z0-9_]*=")
_QUOTED = re.compile(r"'[^']*'")


def app_message(exc: BaseException, *, page: str | None = None) -> str:
    """An engine error in the app's words: widget labels instead of Python parameters.

    ``small_groups='merge'`` becomes "tick 'Merge small groups' on the Data page",
    ``target=`` becomes 'Target column', and advice about an option the app does not
    offer (``task='regression'``) is left out.
    """
    if not isinstance(exc, FairprivError):
        return (f"Something went wrong ({type(exc).__name__}: {exc}). Check the inputs and try "
                "again; if it keeps happening, please report it.")
    return app_words(str(exc), param=exc.param, fix=exc.fix, page=page)


def app_words(message: str, *, param: str | None = None, fix: Mapping[str, object] | None = None,
              page: str | None = None) -> str:
    """Engine text (an error, or a dataset's note) with the app's labels for parameters;
    ``page`` is where it is shown (a pointer to that page is left out)."""
    for name, value in (fix or {}).items():
        if (name, value) in APP_FIXES:
            message = message.replace(f"{name}={value!r}", APP_FIXES[name, value])

    def keyword(m: re.Match[str]) -> str:
        label = APP_LABELS.get(m.group(1))
        if label is None:
            return m.group(0)
        value = m.group(2).strip("'")
        return f"'{label[0]}' = {value}" if value else f"'{label[0]}'"

    if param in APP_LABELS:
        # "TrainingConfig hidden must be ..." -> "'Hidden layers' must be ..."
        message = re.sub(rf"^(?:\S+ )?{re.escape(param)}(?= must )", f"'{APP_LABELS[param][0]}'", message)
    message = _KEYWORD.sub(keyword, message)
    message = message.replace("1/n_train", "1/(training rows)").replace("n_train", "training rows")
    message = _PROSE.sub(lambda m: f"'{APP_LABELS[m.group(1)][0]}'", message)
    # Advice about options the app has no control for ("or pass task='regression'").
    message = re.sub(r",? or (?:pass|set) [a-z_]+=\S+?(?=[.;)]|$)", "", message)
    # Clauses that still name a parameter the app has no control for are advice it cannot follow.
    parts = re.split(r"(, or |; )", message)
    if len(parts) > 1:
        kept = [parts[0]] + [sep + part for sep, part in zip(parts[1::2], parts[2::2], strict=True)
                             if not _NAMES_A_PARAMETER.search(_QUOTED.sub("''", part))]
        if len(kept) < (len(parts) + 1) // 2:  # a clause was dropped: end the sentence
            message = "".join(kept).rstrip().rstrip(",;.") + "."
    message = re.sub(r" ?\((?:CLI )?--[a-z-]+[^)]*\)", "", message)
    message = _VERB.sub(lambda m: "choose" + m.group(1), message)
    if param in APP_LABELS:
        label, where = APP_LABELS[param]
        if f"'{label}'" not in message and where != page:
            message += f" (see '{label}' on the {where} page)"
    return message


def show_error(exc: BaseException, *, page: str | None = None) -> None:
    """Any error as a message in the app's words (shown on ``page``); never a traceback."""
    st.error(app_message(exc, page=page))


# --------------------------------------------------------------------------- the audit job

#: Results kept read (parsed from their JSON) per server process.
MAX_PARSED_RESULTS = 8
#: Finished audits kept per server process (oldest dropped first).
MAX_STORED_RESULTS = 32


@st.cache_resource
def result_store() -> dict[str, str]:
    """Finished audits shared by all sessions: cache key -> results JSON (plain text)."""
    return {}


class StoppedByUser(Exception):
    """Raised from the progress callback to stop a running audit."""


@dataclass(eq=False)
class AuditJob:
    """An audit running in a thread of the session; its state is read by every page.

    ``state`` is ``"running"``, ``"finished"``, ``"failed"`` or ``"stopped"``; the
    thread writes the fields, pages only read them (and call :meth:`stop`).
    """

    label: str
    state: str = "running"
    event: ProgressEvent | None = None
    message: str = ""
    result_json: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    collected: bool = False
    #: The same data and settings had been audited already (in any session): reused.
    reused: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Ask the audit to stop at its next progress event."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() and self.state == "running"

    @property
    def elapsed(self) -> float:
        return (self.ended or time.time()) - self.started

    def on_event(self, event: ProgressEvent) -> None:
        self.event = event
        if self._stop.is_set():
            raise StoppedByUser

    def run(self, work: Callable[[Callable[[ProgressEvent], None]], str]) -> None:
        try:
            self.result_json = work(self.on_event)
            self.state = "finished"
        except StoppedByUser:
            self.state = "stopped"
            self.message = (f"The audit of {self.label} was stopped by you after "
                            f"{format_duration(self.elapsed)}"
                            + (f", at {progress_text(self.event)}" if self.event else "")
                            + ". Nothing of this run was kept; press 'Run audit' to start again.")
        except BaseException as exc:  # noqa: BLE001 - reported on the pages, never raised
            self.state = "failed"
            self.message = app_message(exc)
        finally:
            self.ended = time.time()


def progress_fraction(event: ProgressEvent | None) -> float:
    return 0.0 if event is None else float(event.fraction)


def progress_text(event: ProgressEvent | None) -> str:
    """The engine's one line on where an audit is (the CLI and notebooks show the same)."""
    return "Loading and planning the audit" if event is None else event.describe()


def start_audit(frame: pd.DataFrame, load_kwargs: dict[str, Any], config: AuditConfig,
                label: str) -> AuditJob:
    """Start an audit in a thread of this session (or reuse a finished identical one)."""
    load_json = json.dumps(load_kwargs, sort_keys=True)
    config_json = json.dumps(config.to_dict(), sort_keys=True, default=str)
    key = hashlib.sha256(f"{frame_hash(frame)}|{load_json}|{config_json}".encode()).hexdigest()
    store = result_store()  # fetched here: the thread has no Streamlit context
    job = AuditJob(label=label, reused=key in store)

    def work(progress: Callable[[ProgressEvent], None]) -> str:
        if key not in store:
            dataset = load_dataset(frame, **load_kwargs)
            store[key] = run_audit(dataset, config, progress=progress).to_json()
            while len(store) > MAX_STORED_RESULTS:
                store.pop(next(iter(store)))
        return store[key]

    st.session_state["job"] = job
    threading.Thread(target=job.run, args=(work,), name="fairpriv-audit", daemon=True).start()
    return job


def current_job() -> AuditJob | None:
    job = st.session_state.get("job")
    return job if isinstance(job, AuditJob) else None


def collect_finished_job() -> None:
    """Move a finished job's result to the session (run before every page)."""
    job = current_job()
    # Once only: later choices (new data clears the result) must not bring it back.
    if job is not None and job.state == "finished" and job.result_json is not None and not job.collected:
        job.collected = True
        st.session_state["result_json"] = job.result_json
        st.session_state["result_label"] = job.label


def result() -> AuditResult | None:
    """The session's audit result (read from its JSON once per text, not on every render)."""
    text = st.session_state.get("result_json")
    return None if text is None else _parsed_result(text)


@st.cache_resource(max_entries=MAX_PARSED_RESULTS, show_spinner=False)
def _parsed_result(text: str) -> AuditResult:
    # Reading validates against the schema (50-180 ms); every page render asks for the
    # result, so each text is read once. Pages only read the result, never change it.
    return AuditResult.from_json(text)


def keep_result(res: AuditResult, label: str) -> None:
    """Store an audit finished on the page itself for the Results and Report pages."""
    st.session_state["result_json"] = res.to_json()
    st.session_state["result_label"] = label
    st.success("Done: see Results and Report.")


def no_result_notice() -> None:
    """What a results page says before there is a result: that one is coming, or how to get one."""
    job = current_job()
    if job is not None and job.state == "running":
        st.info(f"The audit of {job.label} is still running (see its progress in the sidebar); "
                "this page shows its results when it ends.")
    else:
        st.warning("No audit yet: run one on page 3.")


def file_stem(label: str) -> str:
    """A safe file-name stem for downloads named after the audited data."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(label).stem).strip("-.")
    return stem or "audit"


def job_panel(*, full: bool) -> None:
    """Where the session's audit is: progress while it runs, then its outcome.

    Drawn in the sidebar of every page (``full=False``) and on the Run page, with a
    Stop button (``full=True``). While the audit runs the panel redraws itself every
    second; when it ends, the whole page reruns once, so every page shows the outcome.
    """
    job = current_job()
    if job is None:
        return
    was_running = job.state == "running"

    @st.fragment(run_every=1.0 if was_running else None)
    def panel() -> None:
        if was_running and job.state != "running":
            st.rerun()
        if job.state == "running":
            st.progress(progress_fraction(job.event), text=progress_text(job.event))
            st.caption(f"Audit of {job.label} running for {format_duration(job.elapsed)}. It keeps running "
                       "while you look at other pages.")
            if full:
                if job.stopping:
                    st.info("Stopping at the next step...")
                elif st.button("Stop the audit", key="stop_run"):
                    job.stop()
                    st.info("Stopping at the next step...")
        elif job.state == "finished":
            how = ("reused: the same data and settings were audited before" if job.reused
                   else f"finished in {format_duration(job.elapsed)}")
            st.success(f"Audit of {job.label} {how}" + (": see Results and Report." if full else "."))
        elif job.state == "failed":
            st.error(f"The audit of {job.label} failed: {job.message}")
        else:
            st.warning(job.message)

    panel()


def chosen_data() -> tuple[pd.DataFrame, dict[str, Any], str]:
    """The data chosen on page 1 (frame, load options, label); stops the page with a pointer
    to page 1 when there is none yet."""
    frame = st.session_state.get("frame")
    load_kwargs = st.session_state.get("load_kwargs")
    if frame is None or load_kwargs is None:
        st.warning("Choose the data first (page 1, then 'Use this data').")
        st.stop()
    return frame, load_kwargs, st.session_state.get("data_label", "the data")


def commit_data(frame: pd.DataFrame, load_kwargs: dict[str, Any], label: str, source: str) -> None:
    """Make ``frame`` (with its column choices, from ``source``) the data Run audits."""
    # The frame is committed together with its column choices, so Run never audits an
    # upload the user has not confirmed.
    st.session_state["frame"] = frame
    st.session_state["load_kwargs"] = load_kwargs
    st.session_state["data_label"] = label
    st.session_state["frame_source"] = source
    st.session_state.pop("result_json", None)


#: The built-in demo: rows of the synthetic set the Start page's button loads.
DEMO_ROWS = 5_000
SOURCES = ("upload a file", "demo data (synthetic)", "UCI Adult (a file on the server)")
