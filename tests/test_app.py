"""The Streamlit app, page by page, with streamlit.testing.v1.AppTest (no browser)."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pdf_checks import assert_pdf_sound
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
TIMEOUT = 240


def csv(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def people(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "sex": rng.choice(["F", "M"], n),
                         "label": (x[:, 0] + rng.normal(0, 1, n) > 0).astype(int)})


@pytest.fixture
def served_media(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Every file the app hands to Streamlit's media store (images, downloads): id -> data."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stored: dict[str, object] = {}
    store = MemoryMediaFileStorage.load_and_get_id

    def keep(self: MemoryMediaFileStorage, path_or_data: object, mimetype: str, kind: object,
             filename: str | None = None) -> str:
        file_id = store(self, path_or_data, mimetype, kind, filename)  # type: ignore[arg-type]
        stored[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return stored


def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.switch_page("views/data.py").run()
    at.file_uploader(key="upload").set_value((name, data, "text/csv")).run()
    return at


def use_people(at: AppTest, rows: int = 800) -> AppTest:
    upload(at, "people.csv", csv(people(rows)))
    at.button(key="use_data").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def quick_setup(at: AppTest, arms: list[str] | None = None) -> AppTest:
    at.switch_page("views/setup.py").run()
    if arms is not None:
        at.multiselect(key="arms").set_value(arms).run()
    for key, value in (("seeds", 1), ("epochs", 1), ("canaries", 100)):
        at.number_input(key=key).set_value(value).run()
    at.text_input(key="hidden").set_value("8").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def wait_for_job(at: AppTest, timeout: float = TIMEOUT) -> AppTest:
    """Rerun the page (as the browser's auto-refresh does) until the session's audit ends."""
    deadline = time.time() + timeout
    while at.session_state["job"].state == "running":
        assert time.time() < deadline, "the audit did not end in time"
        time.sleep(0.5)
        at.run()
    at.run()
    return at


def texts(elements) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.value for e in elements]


def test_data_page_upload_and_choose_columns() -> None:
    at = upload(app(), "people.csv", csv(people()))
    assert not at.exception and not at.error
    # Guessed from the names: the target 'label', the groups from 'sex'.
    assert at.selectbox(key="target").value == "label"
    assert at.multiselect(key="sensitive").value == ["sex"]
    at.button(key="use_data").click().run()
    assert not at.exception
    assert any("Ready: 800 rows of people.csv" in s for s in texts(at.success))
    assert at.session_state["load_kwargs"]["name"] == "people.csv"


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.csv", b"", "is empty"),
    ("garbage.csv", bytes(range(256)) * 8, "looks binary"),
    ("model.csv", b"\x80\x04K\x01.", "cannot decode"),  # a pickle renamed .csv: parsed as text, never unpickled
])
def test_bad_uploads_show_an_error_not_an_exception(name: str, data: bytes, message: str) -> None:
    at = upload(app(), name, data)
    assert not at.exception
    assert any(message in e for e in texts(at.error)), texts(at.error)
    assert all("upload.csv" not in e for e in texts(at.error)), "names the temporary copy"


def test_non_binary_target_and_one_group_are_errors_in_the_apps_words() -> None:
    df = people()
    df["three"] = np.arange(len(df)) % 3
    df["one"] = "same"
    at = upload(app(), "p.csv", csv(df))
    at.selectbox(key="target").set_value("three").run()
    at.multiselect(key="sensitive").set_value(["sex"]).run()
    assert not at.exception and any("exactly two" in e for e in texts(at.error))
    # The app has no regression option: the engine's advice about one is left out.
    assert not any("task" in e or "regression" in e for e in texts(at.error)), texts(at.error)
    assert at.button(key="use_data").disabled
    at.selectbox(key="target").set_value("label").run()
    at.multiselect(key="sensitive").set_value(["one"]).run()
    assert not at.exception and any("only one group" in e for e in texts(at.error))


def test_extreme_values_and_one_column_files_get_the_engines_clear_message() -> None:
    df = people()
    df.loc[3, "x0"] = 1e308  # passed the Data page once, then failed with "Input contains NaN"
    at = upload(app(), "huge.csv", csv(df))
    errors = texts(at.error)
    assert any("'x0'" in e and "1e+308" in e for e in errors), errors
    assert not any("NaN" in e for e in errors) and at.button(key="use_data").disabled
    at = upload(app(), "one.csv", b"age income\n30 1\n40 0\n")  # spaces: not a separator
    assert not at.exception
    assert any("one column" in e for e in texts(at.error)), texts(at.error)


def test_small_groups_are_named_on_the_data_page_and_merged_there() -> None:
    """COMPAS by race: the Data page names the groups too small to audit and offers the fix."""
    from compas_like import compas_like
    from fairpriv_app.common import build_config, settings

    at = upload(app(), "compas.csv", csv(compas_like(scale=0.3)))
    assert at.selectbox(key="target").value == "two_year_recid"
    at.multiselect(key="sensitive").set_value(["race"]).run()
    assert not at.exception
    warning = " ".join(texts(at.warning))
    assert "'Native American' (18 rows)" in warning and "'Asian' (32 rows)" in warning, warning
    assert at.button(key="use_data").disabled
    at.checkbox(key="merge_small").check().run()
    # Merged they are still below the default minimum: the page says what minimum works.
    assert any("'Minimum rows per group in each split' to 10" in e for e in texts(at.error)), texts(at.error)
    assert not any("small_groups" in e or "min_group_rows" in e for e in texts(at.error))
    at.button(key="use_workable").click().run()
    assert at.number_input(key="min_group_rows").value == 10
    # COMPAS has a group 'Other': the merged one is named apart from it.
    assert any("'other (merged)' is 'Asian', 'Native American' together" in s for s in texts(at.success))
    at.button(key="use_data").click().run()
    assert any(s.startswith("Ready:") for s in texts(at.success))
    at.switch_page("views/setup.py").run()
    config = build_config(settings(at.session_state))
    assert (config.small_groups, config.min_group_rows) == ("merge", 10)


def test_adult_source_proposes_its_own_target_and_groups() -> None:
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "adult.data"
    if not path.exists():
        pytest.skip(f"{path} not present")
    at = app()
    at.switch_page("views/data.py").run()
    at.radio(key="source").set_value("UCI Adult (a file on the server)").run()
    at.text_input(key="adult_path").set_value(str(path)).run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.selectbox(key="target").value == "Y"
    assert at.multiselect(key="sensitive").value == ["sex"]


def test_setup_starts_on_the_engine_defaults() -> None:
    """Every Setup widget starts on audit.defaults; the configuration Run uses is the engine's."""
    from fairpriv_app.common import build_config, settings

    from audit import ARM_KINDS, AuditConfig, defaults

    at = app()
    at.switch_page("views/setup.py").run()
    assert not at.exception and not at.error
    assert at.multiselect(key="arms").value == list(ARM_KINDS)
    assert at.slider(key="p").value == defaults.DEFAULT_DROPOUT
    assert at.number_input(key="epsilon").value == defaults.DEFAULT_EPSILON
    assert at.number_input(key="seeds").value == defaults.DEFAULT_SEEDS
    assert at.number_input(key="epochs").value == defaults.DEFAULT_EPOCHS
    assert at.number_input(key="canaries").value == defaults.DEFAULT_CANARIES
    assert at.selectbox(key="trainer").value == defaults.DEFAULT_TRAINER
    assert at.selectbox(key="device").value == defaults.DEFAULT_DEVICE
    assert at.selectbox(key="mia").value == defaults.DEFAULT_MIA
    assert list(at.selectbox(key="mia").options) == list(defaults.MIA_CHOICES)
    assert at.selectbox(key="canary_kind").value == defaults.DEFAULT_CANARY_KIND
    assert list(at.selectbox(key="canary_kind").options) == list(defaults.CANARY_KIND_CHOICES)
    assert at.checkbox(key="white_box").value == defaults.DEFAULT_WHITE_BOX
    saved = build_config(settings(at.session_state))
    engine = AuditConfig()
    for name in ("seeds", "epsilon", "delta", "training", "trainer", "device", "privacy_audit",
                 "small_groups", "min_group_rows"):
        assert getattr(saved, name) == getattr(engine, name), name
    assert [a.kind for a in saved.arms] == [a.kind for a in engine.arms]
    assert saved.arms[1].p == defaults.DEFAULT_DROPOUT  # type: ignore[attr-defined]
    assert saved.arms[2].budget == defaults.DEFAULT_DROPOUT  # type: ignore[attr-defined]
    # Every setting has a one-line explanation.
    for widget in (*at.multiselect, *at.slider, *at.number_input, *at.text_input, *at.selectbox,
                   *at.checkbox):
        assert widget.help, f"{widget.label} has no help text"


def test_setup_keeps_the_users_settings_across_pages_and_run_uses_them() -> None:
    at = use_people(app())
    quick_setup(at, arms=["baseline", "dp_sgd"])
    at.slider(key="p").set_value(0.3).run()
    for page in ("views/run.py", "views/results.py", "views/data.py", "views/setup.py"):
        at.switch_page(page).run()
        assert not at.exception
    assert at.multiselect(key="arms").value == ["baseline", "dp_sgd"]
    assert (at.number_input(key="seeds").value, at.number_input(key="epochs").value) == (1, 1)
    assert at.slider(key="p").value == 0.3 and at.text_input(key="hidden").value == "8"
    at.switch_page("views/run.py").run()
    shown = " ".join(m.value for m in at.markdown)
    assert "arms: baseline, dp_sgd; 1 seed(s), 1 epochs" in shown, shown
    # The data page also kept its choices.
    at.switch_page("views/data.py").run()
    assert at.selectbox(key="target").value == "label"


def test_settings_dropped_by_a_fragment_rerun_come_back() -> None:
    # While an audit runs, the progress panel's once-a-second fragment rerun drops the
    # values of widgets its page does not draw (streamlit#10805). AppTest does not run
    # timed fragments, so the drop is made by hand; the browser test sees the real one.
    at = use_people(app())
    quick_setup(at, arms=["baseline", "dp_sgd"])
    at.checkbox(key="missing_on").check().run()
    at.switch_page("views/results.py").run()
    for key in ("arms", "seeds", "epochs", "hidden", "missing_on", "target"):
        del at.session_state[key]
    at.switch_page("views/setup.py").run()
    assert not at.exception
    assert at.multiselect(key="arms").value == ["baseline", "dp_sgd"]
    assert (at.number_input(key="seeds").value, at.number_input(key="epochs").value) == (1, 1)
    assert at.text_input(key="hidden").value == "8" and at.checkbox(key="missing_on").value
    at.switch_page("views/data.py").run()
    assert at.selectbox(key="target").value == "label"


def test_setup_rejects_bad_hidden_layers_with_the_engine_message() -> None:
    at = use_people(app())
    at.switch_page("views/setup.py").run()
    at.text_input(key="hidden").set_value("64;32").run()
    assert not at.exception
    assert any("'64;32'" in e for e in texts(at.error)), texts(at.error)
    at.switch_page("views/run.py").run()  # Run refuses the same settings, in the same words
    assert any("'64;32'" in e for e in texts(at.error)) and not at.get("button"), texts(at.error)
    at.switch_page("views/setup.py").run()
    at.text_input(key="hidden").set_value("").run()  # empty: a linear model
    assert not at.error


def test_full_flow_runs_in_the_background_and_survives_page_changes() -> None:
    at = use_people(app(), 1200)
    quick_setup(at)
    at.switch_page("views/run.py").run()
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    job = at.session_state["job"]
    assert job.state == "running" and at.button(key="run").disabled
    # Leave the page while it runs: the audit goes on, and every page shows its progress.
    at.switch_page("views/data.py").run()
    assert not at.exception
    wait_for_job(at)
    assert job.state == "finished", job.message
    assert any("finished" in s for s in texts(at.sidebar.success)), texts(at.sidebar.success)
    result = json.loads(at.session_state["result_json"])
    assert [a["kind"] for a in result["arms"]] == ["baseline", "uniform_dropout", "group_dropout", "dp_sgd"]
    at.switch_page("views/results.py").run()
    assert not at.exception and not at.error
    labels = {b.label for b in at.get("download_button")}
    assert {"Download by_group.csv", "Download gaps.csv", "Download mia.csv"} <= labels
    # Downloads never rerun the page (a rerun cancels a download still in flight).
    assert all(b.proto.ignore_rerun for b in at.get("download_button"))
    at.switch_page("views/report.py").run()
    assert not at.exception
    buttons = at.get("download_button")
    assert {b.label for b in buttons} == {"Download PDF report", "Download HTML report",
                                          "Download results.json"}
    assert all(b.proto.ignore_rerun for b in buttons)


def test_stopping_a_run_says_so() -> None:
    at = use_people(app(), 1200)
    quick_setup(at)
    at.number_input(key="epochs").set_value(30).run()
    at.switch_page("views/run.py").run()
    at.button(key="run").click().run()
    job = at.session_state["job"]
    at.button(key="stop_run").click().run()
    wait_for_job(at)
    assert job.state == "stopped"
    assert any("stopped by you" in w for w in texts(at.warning)), texts(at.warning)
    assert "result_json" not in at.session_state


def test_a_failed_run_shows_its_reason_without_a_click(monkeypatch: pytest.MonkeyPatch) -> None:
    at = use_people(app(), 1200)
    quick_setup(at, arms=["baseline", "dp_sgd"])
    at.text_input(key="delta").set_value("0.01").run()  # not below 1/n: refused when planned
    at.switch_page("views/run.py").run()
    at.button(key="run").click().run()
    wait_for_job(at)
    errors = texts(at.error)
    assert any("failed" in e and "delta 0.01 is not below 1/(training rows)" in e for e in errors), errors
    assert any("'DP-SGD delta'" in e for e in errors), errors
    assert not at.exception


def test_diverged_training_is_shown_as_the_engines_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app has no learning-rate widget; a configuration with a huge one stands for any
    run whose training turns NaN. It used to fail with "Input contains NaN"."""
    import dataclasses

    import fairpriv_app.common as common

    build = common.build_config

    def diverging(values: object) -> object:
        config = build(values)  # type: ignore[arg-type]
        return dataclasses.replace(config, training=dataclasses.replace(config.training, lr=1e30))

    monkeypatch.setattr(common, "build_config", diverging)
    at = use_people(app(), 1200)
    quick_setup(at, arms=["baseline"])
    at.switch_page("views/run.py").run()
    at.button(key="run").click().run()
    wait_for_job(at)
    errors = texts(at.error)
    assert any("failed" in e and "Training diverged" in e and "arm 'baseline' (seed 0)" in e
               and re.search(r"at step \d+ of \d+", e) for e in errors), errors
    # Advice about a learning rate the app cannot set is left out, as are Python spellings.
    assert not any("lr=" in e or "NaN." in e or "Traceback" in e for e in errors), errors
    assert not at.exception


def test_quoted_user_text_holding_equals_signs_is_never_cut() -> None:
    """Clauses that still name a parameter the app lacks are dropped; a column or group whose
    own name holds '=' is not such a clause."""
    from fairpriv_app.common import app_words

    text = ("feature column 'dose=mg' has 1 infinite value(s) (first at data rows [2]: inf). Remove or "
            "cap those values, or empty those cells (missing feature values are imputed), or leave the "
            "column(s) out of features=.")
    shown = app_words(text, param="features")
    assert shown.startswith("feature column 'dose=mg' has 1 infinite value(s)") and "Remove or cap" in shown
    assert "features=" not in shown and shown.endswith("imputed).")
    advice = "Likely cause: a learning rate 200 times the default; lower it, e.g. lr=0.005."
    assert app_words(advice) == "Likely cause: a learning rate 200 times the default."


def test_sweep_page_runs_a_small_sweep_and_shows_the_frontier(served_media: dict[str, object]) -> None:
    at = use_people(app(), 800)
    quick_setup(at)
    at.switch_page("views/sweep.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.multiselect(key="sweep_arms").set_value(["baseline", "dp_sgd"]).run()
    at.text_input(key="sweep_epsilons").set_value("1, two").run()
    errors = texts(at.error)
    assert any(e.startswith("'Epsilons' must be comma-separated numbers") for e in errors), errors
    assert not any("epsilons" in e for e in errors), errors  # the label, never the parameter
    at.text_input(key="sweep_epsilons").set_value("1,4").run()
    assert not at.error
    at.button(key="run_sweep").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    frontier = at.table[0].value
    assert list(frontier["point"]) == ["baseline", "dp_sgd (epsilon 1)", "dp_sgd (epsilon 4)"]
    assert frontier["accountant ε"].tolist()[0] == "no guarantee"
    pngs = [v for v in served_media.values() if isinstance(v, bytes) and v.startswith(b"\x89PNG")]
    assert len(pngs) >= 3
    pdfs = [v for v in served_media.values() if isinstance(v, bytes) and v.startswith(b"%PDF")]
    assert pdfs, "no PDF report offered"
    # The sweep survives leaving the page and coming back.
    at.switch_page("views/setup.py").run()
    at.switch_page("views/sweep.py").run()
    assert not at.exception and len(at.table) == 1
    assert at.text_input(key="sweep_epsilons").value == "1,4"
    assert not any("was stopped" in w for w in texts(at.warning))
    # A sweep interrupted by leaving the page says so when the user comes back.
    at.session_state["sweep_started"] = True
    at.switch_page("views/sweep.py").run()
    assert any("The last sweep was stopped when you left this page" in w for w in texts(at.warning))


def test_engine_errors_in_the_apps_words() -> None:
    from fairpriv_app.common import app_message

    from audit import DataError, load_dataset

    def message(**options: object) -> str:
        with pytest.raises(DataError) as info:
            load_dataset(people(), **options)
        return app_message(info.value)

    assert "'Target column'" in message(sensitive="sex") and "target=" not in message(sensitive="sex")
    text = message(target="label")
    assert "'Sensitive column(s)'" in text and "sensitive=" not in text
    text = message(target="label", sensitive="sex", positive_label="yes")
    assert "positive label 'yes'" in text and "'Positive label'" in text
    assert "Something went wrong (ValueError: x)" in app_message(ValueError("x"))


def test_report_bytes_come_from_the_renderers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              served_media: dict[str, object]) -> None:
    """The report page's downloads are exactly what ``reports`` renders for the same result."""
    from reportlab import rl_config

    from audit import AuditConfig, BaselineArm, PrivacyAuditConfig, TrainingConfig, run_audit
    from reports import render_html, render_pdf

    res = run_audit("synthetic", AuditConfig(arms=(BaselineArm(),), seeds=1, n_bootstrap=0,
                                             training=TrainingConfig(epochs=1, hidden=(4,)),
                                             privacy_audit=PrivacyAuditConfig(canaries=0, mia="none",
                                                                              mechanism_rows=0)),
                    n_rows=600)
    # ReportLab stamps each PDF with the time and a random id unless told to be invariant.
    monkeypatch.setattr(rl_config, "invariant", 1)
    stored = served_media  # media file id -> the bytes a download button serves
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["result_json"] = res.to_json()
    at.run()
    at.switch_page("views/report.py").run()
    assert not at.exception and not at.error
    assert all(isinstance(data, bytes) for data in stored.values())
    served = {b.label: stored[b.proto.url.rsplit("/", 1)[-1].split(".")[0]]
              for b in at.get("download_button")}
    render_pdf(res, tmp_path / "report.pdf")
    render_html(res, tmp_path / "report.html")
    assert served["Download PDF report"][:5] == b"%PDF-"
    assert served["Download PDF report"] == (tmp_path / "report.pdf").read_bytes()
    assert_pdf_sound(tmp_path / "report.pdf")
    assert served["Download HTML report"] == (tmp_path / "report.html").read_bytes()
    assert served["Download results.json"] == res.to_json().encode("utf-8")


def test_pages_without_data_guide_the_user() -> None:
    at = app()
    for page in ("views/run.py", "views/results.py", "views/report.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert at.warning, page


def test_predictions_page() -> None:
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 2, n)
    score = np.clip(0.5 + 0.3 * (y - 0.5) * 2 + rng.normal(0, 0.2, n), 0, 1)
    df = pd.DataFrame({"y_true": y, "y_pred": (score >= 0.5).astype(int), "y_score": score,
                       "member": rng.integers(0, 2, n), "grp": rng.choice(["a", "b"], n)})
    at = app()
    at.switch_page("views/model.py").run()
    at.file_uploader(key="pred_upload").set_value(("p.csv", csv(df), "text/csv")).run()
    at.multiselect(key="m_sensitive").set_value(["grp"]).run()
    at.button(key="m_run").click().run()
    assert not at.exception, at.exception
    assert any("Done" in s.value for s in at.success)
    result = json.loads(at.session_state["result_json"])
    assert result["arms"][0]["kind"] == "external"


def test_pickle_uploads_are_refused_by_name_too() -> None:
    from fairpriv_app.common import read_upload

    from audit import FairprivError

    with pytest.raises(FairprivError, match="never loaded"):
        read_upload("model.pkl", b"\x80\x04K\x01.")


def test_onnx_model_page(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from test_external import _onnx_logistic

    rng = np.random.default_rng(2)
    n = 500
    x = rng.normal(size=(n, 2))
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "grp": rng.choice(["p", "q"], n),
                       "label": (x[:, 0] > 0).astype(int)})
    _onnx_logistic(tmp_path / "m.onnx", [3.0, 0.0], 0.0)
    at = app()
    at.switch_page("views/model.py").run()
    at.radio(key="m_mode").set_value("ONNX model + labelled data").run()
    at.file_uploader(key="onnx_upload").set_value(("m.onnx", (tmp_path / "m.onnx").read_bytes(),
                                                   "application/octet-stream")).run()
    at.file_uploader(key="onnx_data").set_value(("d.csv", csv(df), "text/csv")).run()
    at.selectbox(key="o_target").set_value("label").run()
    at.multiselect(key="o_sensitive").set_value(["grp"]).run()
    at.multiselect(key="o_inputs").set_value(["a", "b"]).run()
    at.button(key="o_run").click().run()
    assert not at.exception, at.exception
    assert any("Done" in s.value for s in at.success), [e.value for e in at.error]


def test_frame_hash_sees_names_and_dtypes() -> None:
    from fairpriv_app.common import frame_hash

    a = pd.DataFrame({"x": [1, 2], "y": [0, 1]})
    assert frame_hash(a) == frame_hash(a.copy())
    assert frame_hash(a) != frame_hash(a.rename(columns={"x": "z"}))
    assert frame_hash(a) != frame_hash(a.astype({"x": float}))


def test_results_page_shows_claimed_vs_proven() -> None:
    """The Results page shows the reports' claimed-vs-proven figure and the engine's verdict
    for every arm and audit, word for word."""
    from audit import (
        CANARY_AUDITS,
        AuditConfig,
        BaselineArm,
        DPSGDArm,
        PrivacyAuditConfig,
        TrainingConfig,
        run_audit,
    )

    res = run_audit("synthetic", AuditConfig(
        arms=(BaselineArm(), DPSGDArm(epsilon=2.0)), seeds=1, n_bootstrap=0,
        training=TrainingConfig(epochs=1, hidden=(4,)),
        privacy_audit=PrivacyAuditConfig(canaries=100, mia="none", mechanism_rows=0)), n_rows=1000)
    bounds = res.privacy_bounds()
    assert set(bounds["audit"]) == set(CANARY_AUDITS)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["result_json"] = res.to_json()
    at.run()
    at.switch_page("views/results.py").run()
    assert not at.exception and not at.error
    assert "Privacy: claimed vs proven" in [s.value for s in at.subheader]
    table = next(t.value for t in at.table if "verdict" in t.value.columns)
    assert list(table["verdict"]) == list(bounds["verdict"])
    claims = dict(zip(table.index.get_level_values("arm"), table["claimed epsilon"], strict=True))
    assert claims["baseline"] == "no guarantee" and claims["dp_sgd"] == f"{res.privacy_bounds()['accountant_epsilon'].max():.2f}"
    assert "Download privacy_bounds.csv" in {b.label for b in at.get("download_button")}
    # A violated claim is also shown as an error, in the engine's words.
    data = json.loads(res.to_json())
    dp = next(a for a in data["arms"] if a["kind"] == "dp_sgd")
    for entry in dp["privacy"]["empirical"]["per_seed"]:
        entry["epsilon_lower_bound"], entry["dp_violation"] = 9.0, True
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["result_json"] = json.dumps(data)
    at.run()
    at.switch_page("views/results.py").run()
    assert not at.exception
    assert any("Violates its claim" in e.value and e.value.startswith("dp_sgd, ") for e in at.error)


def test_rmia_choice_and_results_show_both_shadow_attacks() -> None:
    from audit import AuditConfig, BaselineArm, PrivacyAuditConfig, TrainingConfig, load_dataset, run_audit

    at = app()
    at.switch_page("views/setup.py").run()
    at.selectbox(key="mia").set_value("rmia").run()
    assert not at.exception
    assert any("scored by both LiRA and RMIA" in c.value for c in at.caption)
    # The results page of an audit with shadow models: LiRA and RMIA rows and ROC panels.
    cfg = AuditConfig(arms=(BaselineArm(),), seeds=1, n_bootstrap=0, training=TrainingConfig(epochs=1, hidden=(8,)),
                      privacy_audit=PrivacyAuditConfig(mia="rmia", shadows=2, canaries=0, mia_bootstrap=0,
                                                       mechanism_rows=0))
    at.session_state["result_json"] = run_audit(load_dataset("synthetic", n_rows=1500), cfg).to_json()
    at.switch_page("views/results.py").run()
    assert not at.exception
    assert any("LiRA and RMIA attack" in c.value for c in at.caption)
    shown = [df.value for df in at.dataframe if "attack" in df.value.columns]
    assert len(shown) == 1 and set(shown[0]["attack"]) == {"loss", "lira", "rmia"}


def test_results_page_shows_the_dropout_tradeoff(served_media: dict[str, object]) -> None:
    """Where the Results page shows a group-dropout solution, it shows the reports'
    trade-off figure of that solution (the very PNG bytes) and its caption."""

    from audit import (
        AuditConfig,
        GroupDropoutArm,
        PrivacyAuditConfig,
        TrainingConfig,
        UniformDropoutArm,
        run_audit,
    )
    from reports import dropout_tradeoff_caption, solution_tradeoff_figure

    res = run_audit("synthetic", AuditConfig(
        arms=(UniformDropoutArm(p=0.5), GroupDropoutArm()), seeds=1, n_bootstrap=0,
        training=TrainingConfig(epochs=1, hidden=(4,)),
        privacy_audit=PrivacyAuditConfig(canaries=0, mia="none", mechanism_rows=0)), n_rows=1000)
    sol = res.solutions["group_dropout"]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["result_json"] = res.to_json()
    at.run()
    at.switch_page("views/results.py").run()
    assert not at.exception and not at.error
    assert "Group-specific dropout (group_dropout)" in [s.value for s in at.subheader]
    assert dropout_tradeoff_caption(sol) in [c.value for c in at.caption]
    shown = [data for data in served_media.values() if isinstance(data, bytes)]  # every image
    assert solution_tradeoff_figure(sol) in shown


def test_setup_measures_missing_features_and_results_show_them(served_media: dict[str, object]) -> None:
    """Setup's missing-feature settings reach the audit's configuration (a bad group is
    named in the app's words), and Results shows the section with the reports' figure."""
    from fairpriv_app.common import build_config, settings

    from audit import (
        AuditConfig,
        BaselineArm,
        MissingFeaturesConfig,
        PrivacyAuditConfig,
        TrainingConfig,
        run_audit,
    )
    from reports import missing_error_figure, missing_tables

    at = use_people(app())
    at.switch_page("views/setup.py").run()
    at.checkbox(key="missing_on").check().run()
    assert not at.exception
    assert any("1/(1 - p)" in c.value for c in at.caption)  # the treatment is stated
    at.text_input(key="missing_rates").set_value("F=0.3,Nobody=0.1").run()
    assert not at.exception
    errors = texts(at.error)
    assert any("unknown group(s) ['Nobody']; no rate for group(s) ['M']" in e and "F=0.2,M=0.2" in e
               for e in errors), errors
    assert not any("missing_rates" in e for e in errors)  # the app's label, not the parameter
    at.text_input(key="missing_rates").set_value("0.2").run()
    assert not at.exception and not at.error
    config = build_config(settings(at.session_state))
    assert config.missing is not None and config.missing.rates == 0.2
    # The placeholder uses this data's groups; a grid with nothing missing is refused.
    assert at.text_input(key="missing_rates").placeholder == "e.g. F=0.3,M=0.1"
    for grid, words in (("", "hold no rate above 0"), ("0", "hold no rate above 0"),
                        ("0.2,1.5", "p_test: 1.5 is not a rate; each must be a number from 0 to 0.95")):
        at.text_input(key="missing_grid").set_value(grid).run()
        assert not at.exception
        assert any(words in e and "missing_grid" not in e for e in texts(at.error)), texts(at.error)
    at.text_input(key="missing_grid").set_value("0.1,0.3").run()
    assert not at.error

    res = run_audit("synthetic", AuditConfig(
        arms=(BaselineArm(),), seeds=1, n_bootstrap=0, training=TrainingConfig(epochs=1, hidden=(4,)),
        privacy_audit=PrivacyAuditConfig(canaries=0, mia="none", mechanism_rows=0),
        missing=MissingFeaturesConfig(rates={"majority": 0.1, "minority": 0.3}, grid=(0.3,),
                                      train_grid=(0.0, 0.3), draws=1)), n_rows=1000)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["result_json"] = res.to_json()
    at.run()
    at.switch_page("views/results.py").run()
    assert not at.exception and not at.error
    assert "Missing features at test time" in [s.value for s in at.subheader]
    grid = res.missing_setup["grid"]
    shown = [data for data in served_media.values() if isinstance(data, bytes)]
    assert missing_error_figure(res.missing, res.arm_names, grid=grid, ci_level=res.ci_level) in shown
    scenario = missing_tables(res)["scenario"]
    assert any(t.value.reset_index().equals(scenario) for t in at.table)
    downloads = {b.label for b in at.get("download_button")}
    assert {"Download missing.csv", "Download the missing-feature errors (CSV)",
            "Download the p_train grid (CSV)"} <= downloads, downloads


def test_dp_sgd_f_is_offered_and_results_show_its_cost_per_group() -> None:
    """Setup offers the opt-in dp_sgd_f arm (the engine's registry); Results tables DP's
    cost per group with dp_sgd_f against dp_sgd, the report's cells."""
    from audit import (
        AuditConfig,
        AuditResult,
        BaselineArm,
        DPSGDArm,
        DPSGDFArm,
        PrivacyAuditConfig,
        TrainingConfig,
        run_audit,
    )
    from reports import dp_cost_table

    at = app()
    at.switch_page("views/setup.py").run()
    assert "dp_sgd_f" in at.multiselect(key="arms").options
    assert "dp_sgd_f" not in at.multiselect(key="arms").value  # opt-in
    res = run_audit("synthetic", AuditConfig(
        arms=(BaselineArm(), DPSGDArm(), DPSGDFArm()), seeds=2, n_bootstrap=0,
        training=TrainingConfig(epochs=1, hidden=(4,)),
        privacy_audit=PrivacyAuditConfig(canaries=0, mia="none", mechanism_rows=0)), n_rows=1000)
    at.session_state["result_json"] = res.to_json()
    at.switch_page("views/results.py").run()
    assert not at.exception and not at.error
    assert "DP's cost per group" in [s.value for s in at.subheader]
    shown = next(t.value for t in at.table if "Versus" in t.value.index.names)
    assert shown.reset_index().equals(dp_cost_table(AuditResult.from_json(res.to_json())))
    assert ("dp_sgd_f", "dp_sgd") in {(a, v) for a, v, _ in shown.index}
    # What its epsilon covers: the counts' noise and the assumptions, as in the report.
    from reports import guarantee_notes

    notes = guarantee_notes(AuditResult.from_json(res.to_json()))
    assert any("noisy" in n or "counts" in n for n in notes) and any("taken as public" in n for n in notes)
    written = [m.value for m in at.markdown]
    assert all(n in written for n in notes), written
