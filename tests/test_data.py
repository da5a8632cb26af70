from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import ConfigError, DataError, load_dataset, make_synthetic, split_dataset


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "job": rng.choice(["a", "b", "c"], n),
        "sex": rng.choice(["Female", "Male"], n),
        "race": rng.choice(["Black", "White"], n),
        "income": rng.choice(["<=50K", ">50K"], n, p=[0.7, 0.3]),
    })


def test_dataframe_source_and_defaults() -> None:
    ds = load_dataset(frame(), target="income", sensitive="sex")
    assert ds.group_labels == ("Female", "Male")
    assert list(ds.features.columns) == ["age", "job", "race"]
    assert set(np.unique(ds.y)) == {0.0, 1.0}
    # '>50K' is the rarer value, hence the default positive class, and the note says so.
    assert ds.positive_label == ">50K"
    assert any("less frequent" in n for n in ds.notes)


def test_intersectional_groups_labelled_with_bar() -> None:
    ds = load_dataset(frame(), target="income", sensitive=["sex", "race"])
    assert set(ds.group_labels) == {"Female|Black", "Female|White", "Male|Black", "Male|White"}
    assert "race" not in ds.features.columns


def test_include_sensitive_as_feature() -> None:
    ds = load_dataset(frame(), target="income", sensitive="sex", include_sensitive=True)
    assert "sex" in ds.features.columns


def test_positive_label_override_and_trailing_period() -> None:
    df = frame()
    df.loc[::2, "income"] = df.loc[::2, "income"] + "."  # adult.test style
    ds = load_dataset(df, target="income", sensitive="sex", positive_label="<=50K")
    assert ds.label_names == (">50K", "<=50K")
    expected = (df["income"].str.rstrip(".") == "<=50K").to_numpy(dtype=float)
    np.testing.assert_array_equal(ds.y, expected)


def test_positive_label_not_a_value() -> None:
    with pytest.raises(DataError, match=r"positive label 'yes' is not a value of target 'income'"):
        load_dataset(frame(), target="income", sensitive="sex", positive_label="yes")


@pytest.mark.parametrize("values", [[0, 1], [True, False], [0.0, 1.0]])
def test_01_and_boolean_targets_positive_is_one(values: list) -> None:
    df = frame()
    df["income"] = [values[i % 2] for i in range(len(df))]
    ds = load_dataset(df, target="income", sensitive="sex")
    assert ds.positive_label in ("1", "True")
    assert ds.y.sum() == 100


def test_missing_target_column_suggests_close_name() -> None:
    with pytest.raises(DataError, match=r"target column 'incom' not found\. Did you mean 'income'\?"):
        load_dataset(frame(), target="incom", sensitive="sex")


def test_missing_sensitive_column_lists_columns() -> None:
    with pytest.raises(DataError, match=r"sensitive column 'gender' not found.*Available columns: age, job"):
        load_dataset(frame(), target="income", sensitive="gender")


def test_no_target_given() -> None:
    with pytest.raises(DataError, match="no target column given"):
        load_dataset(frame(), sensitive="sex")


def test_no_sensitive_given() -> None:
    with pytest.raises(DataError, match="no sensitive column given"):
        load_dataset(frame(), target="income")


def test_target_also_sensitive() -> None:
    with pytest.raises(DataError, match="both the target and a sensitive column"):
        load_dataset(frame(), target="sex", sensitive="sex")


def test_target_not_binary() -> None:
    with pytest.raises(DataError, match=r"target column 'job' has 3 distinct value\(s\).*exactly two"):
        load_dataset(frame(), target="job", sensitive="sex")


def test_target_single_value() -> None:
    df = frame()
    df["income"] = "<=50K"
    with pytest.raises(DataError, match=r"has 1 distinct value\(s\)"):
        load_dataset(df, target="income", sensitive="sex")


def test_missing_target_dropped_and_counted() -> None:
    df = frame()
    df.loc[[3, 7, 9], "income"] = np.nan
    df.loc[[11], "sex"] = None
    ds = load_dataset(df, target="income", sensitive="sex")
    assert ds.n_rows == 196
    assert ds.dropped_rows == {"missing target 'income'": 3, "missing sensitive 'sex'": 1}


def test_missing_target_error_option() -> None:
    df = frame()
    df.loc[[3, 7], "income"] = np.nan
    with pytest.raises(DataError, match=r"target column 'income' has 2 missing value\(s\) \(first at data rows \[4, 8\]\)"):
        load_dataset(df, target="income", sensitive="sex", missing_target="error")


def test_only_one_group() -> None:
    df = frame()
    df["sex"] = "Female"
    with pytest.raises(DataError, match=r"only one group \('Female'\)"):
        load_dataset(df, target="income", sensitive="sex")


def test_missing_feature_values_counted() -> None:
    df = frame()
    df.loc[[1, 2], "age"] = np.nan
    df.loc[[5], "job"] = np.nan
    ds = load_dataset(df, target="income", sensitive="sex")
    assert ds.missing_values == {"age": 2, "job": 1}


def test_no_feature_columns() -> None:
    df = frame()[["sex", "income"]]
    with pytest.raises(DataError, match="no feature columns"):
        load_dataset(df, target="income", sensitive="sex")


def test_unknown_builtin_name() -> None:
    with pytest.raises(DataError, match="unknown dataset 'synthtic'"):
        load_dataset("synthtic")


def test_file_source(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    frame().to_csv(path, index=False)
    ds = load_dataset(path, target="income", sensitive="sex")
    assert ds.name == "people.csv"
    assert ds.n_rows == 200


def test_synthetic_is_seeded_and_documented_shape() -> None:
    a, b = make_synthetic(n_rows=500, seed=3), make_synthetic(n_rows=500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not make_synthetic(n_rows=500, seed=4).equals(a)
    ds = load_dataset("synthetic", n_rows=5000)
    share = (ds.groups == "minority").mean()
    assert 0.17 < share < 0.23  # 20% minority, binomial sd ~0.006 at n=5000
    # The minority's signal column b has std 1 there and 0.1 in the majority; the
    # majority's proxies a1..a6 the other way round (plus their N(0, 0.3^2) noise).
    b_std = {g: ds.features.loc[ds.groups == g, "b"].std() for g in ds.group_labels}
    assert b_std["minority"] == pytest.approx(1.0, rel=0.1)
    assert b_std["majority"] == pytest.approx(0.1, rel=0.1)
    a_std = {g: ds.features.loc[ds.groups == g, "a1"].std() for g in ds.group_labels}
    assert a_std["majority"] == pytest.approx((1 + 0.3**2) ** 0.5, rel=0.1)
    assert a_std["minority"] == pytest.approx((0.1**2 + 0.3**2) ** 0.5, rel=0.1)
    assert {f"c{j}" for j in range(1, 7)} <= set(ds.features.columns)


def test_synthetic_regression_task() -> None:
    ds = load_dataset("synthetic-regression", n_rows=300)
    assert ds.task == "regression"
    assert ds.label_names is None
    assert len(np.unique(ds.y)) > 100


def test_adult_offline_without_path_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, Adult without a path fails after one short connection probe, before any download."""
    import socket

    import fairlearn.datasets

    probes: list[tuple[object, object]] = []
    fetches: list[object] = []

    def unreachable(address: object, timeout: object = None, *args: object, **kwargs: object) -> None:
        probes.append((address, timeout))
        raise OSError("network is unreachable")

    def fetch(*args: object, **kwargs: object) -> None:
        fetches.append(args)
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(fairlearn.datasets, "fetch_adult", fetch)
    with pytest.raises(DataError, match=r"offline.*adult.data or adult.test as path="):
        load_dataset("adult")
    assert fetches == []  # the error comes before any download is tried
    assert len(probes) == 1
    address, timeout = probes[0]
    assert address == ("www.openml.org", 443)
    # Fails fast: the one probe is bounded (a socket without a timeout can hang for minutes).
    assert isinstance(timeout, int | float) and 0 < timeout <= 2.0


def test_adult_file_without_header(tmp_path: Path, adult_path: Path) -> None:
    lines = adult_path.read_text().splitlines()
    headerless = tmp_path / "adult.data"
    headerless.write_text("\n".join(lines[1:301]) + "\n")
    ds = load_dataset("adult", path=headerless)
    assert ds.target == "income"
    assert ds.n_rows == 300
    assert ds.group_labels == ("Female", "Male")


def test_adult_test_file_with_period_labels(adult_path: Path) -> None:
    ds = load_dataset("adult", path=adult_path.with_name("adult.test"))
    assert ds.n_rows == 16281
    assert ds.positive_label == ">50K"
    assert 0.2 < ds.y.mean() < 0.3  # Adult's positive rate is about 24%


def test_split_stratified_by_group_and_label() -> None:
    ds = load_dataset("synthetic", n_rows=4000)
    sp = split_dataset(ds, seed=1)
    all_rows = np.concatenate([sp.train, sp.val, sp.test])
    assert np.array_equal(np.sort(all_rows), np.arange(ds.n_rows))
    for g in ds.group_labels:
        for idx in (sp.train, sp.val, sp.test):
            in_g = ds.groups[idx] == g
            # Stratification keeps the base rate per group within rounding (1 row per stratum).
            assert ds.y[idx][in_g].mean() == pytest.approx(ds.y[ds.groups == g].mean(), abs=0.01)
    assert sp.test.shape[0] == pytest.approx(800, abs=4)
    again = split_dataset(ds, seed=1)
    assert np.array_equal(again.test, sp.test)


def test_small_group_error_names_group_and_counts() -> None:
    df = frame(n=400)
    df.loc[:9, "race"] = "Asian"
    ds = load_dataset(df, target="income", sensitive="race")
    with pytest.raises(DataError, match=r"'Asian': train \d+, val \d+, test \d+.*small_groups='merge'"):
        split_dataset(ds, min_group_rows=5)


def test_small_groups_merged_into_other() -> None:
    df = frame(n=600)
    df.loc[:9, "race"] = "Asian"
    df.loc[10:19, "race"] = "Other-race"
    df.loc[20:29, "race"] = "Amer-Indian"
    ds = load_dataset(df, target="income", sensitive="race")
    sp = split_dataset(ds, min_group_rows=5, small_groups="merge")
    assert set(sp.merged) == {"Asian", "Amer-Indian", "Other-race"}
    assert set(np.unique(sp.groups)) == {"Black", "White", "other"}


def test_merged_other_still_too_small() -> None:
    df = frame(n=400)
    df.loc[:4, "race"] = "Asian"
    ds = load_dataset(df, target="income", sensitive="race")
    with pytest.raises(DataError, match="even after merging"):
        split_dataset(ds, min_group_rows=5, small_groups="merge")


def test_split_bad_fractions() -> None:
    ds = load_dataset("synthetic", n_rows=200)
    with pytest.raises(ConfigError, match="sum to less than 1"):
        split_dataset(ds, val_fraction=0.5, test_fraction=0.5)


@pytest.mark.parametrize(("values", "asked", "expected"),
                         [([0, 1], "0", "0"), ([True, False], "false", "False"), ([0.0, 1.0], "1", "1")])
def test_positive_label_given_as_text_for_numeric_or_boolean_target(values: list, asked: str,
                                                                    expected: str) -> None:
    df = frame()
    df["income"] = [values[i % 2] for i in range(len(df))]
    ds = load_dataset(df, target="income", sensitive="sex", positive_label=asked)
    assert ds.positive_label == expected
    assert ds.y.sum() == 100


def test_bad_target_values_shown_as_text() -> None:
    df = frame()
    df["income"] = np.arange(len(df)) % 3
    with pytest.raises(DataError, match=r"\('0', '1', '2'\)"):
        load_dataset(df, target="income", sensitive="sex")


def test_separator_in_intersectional_values_is_refused() -> None:
    df = frame()
    df.loc[:5, "sex"] = "F|X"
    with pytest.raises(DataError, match=r"sensitive column 'sex' has value\(s\) containing '\|'"):
        load_dataset(df, target="income", sensitive=["sex", "race"])
    # one sensitive column: no joining, so the value is fine
    assert "F|X" in load_dataset(df, target="income", sensitive="sex").group_labels


def test_merge_never_joins_a_real_group_called_other() -> None:
    df = frame(n=600)
    df["race"] = np.where(np.arange(600) % 2 == 0, "White", "other")
    df.loc[:9, "race"] = "tiny"
    df.loc[10:19, "race"] = "small"
    ds = load_dataset(df, target="income", sensitive="race")
    sp = split_dataset(ds, min_group_rows=3, small_groups="merge")
    assert set(sp.merged) == {"tiny", "small"}
    assert set(np.unique(sp.groups)) == {"White", "other", "other (merged)"}
    # Nor a group that differs only in case (COMPAS has 'Other'): it would read as the same.
    df["race"] = df["race"].replace("other", "Other")
    sp = split_dataset(load_dataset(df, target="income", sensitive="race"), min_group_rows=3,
                       small_groups="merge")
    assert set(np.unique(sp.groups)) == {"White", "Other", "other (merged)"}


def test_infinite_feature_values_are_refused() -> None:
    df = frame()
    df.loc[[4, 9], "age"] = [np.inf, -np.inf]
    with pytest.raises(DataError, match=r"feature column 'age' has 2 infinite value\(s\) \(first at "
                       r"data rows \[5, 10\]: inf, -inf\)\. Remove or cap") as info:
        load_dataset(df, target="income", sensitive="sex")
    assert info.value.param == "features"


@pytest.mark.parametrize("value", [1e308, -1e308, 1e200, 1e39])
def test_feature_values_beyond_float32_are_refused_naming_column_value_and_row(value: float) -> None:
    # 1e308 used to pass load_dataset and turn into NaN in standardisation ("Input contains NaN"
    # deep in training); anything beyond float32's range is refused up front, with the value.
    df = frame()
    df.loc[3, "age"] = value
    with pytest.raises(DataError) as info:
        load_dataset(df, target="income", sensitive="sex")
    message = str(info.value)
    assert message.startswith("feature column 'age' has 1 value(s) beyond ±3.4e+38 (first at data rows [4]: "
                              f"{value:g})")
    assert "32-bit floats" in message and "Remove or cap those values" in message
    assert info.value.param == "features" and info.value.fix is None


def test_every_bad_feature_column_is_named_in_one_message() -> None:
    df = frame()
    df["score"] = np.linspace(0, 1, len(df))
    df.loc[0, "age"] = np.inf
    df.loc[[5, 6], "score"] = [1e300, -np.inf]
    with pytest.raises(DataError) as info:
        load_dataset(df, target="income", sensitive="sex")
    message = str(info.value)
    assert "feature column 'age' has 1 infinite value(s) (first at data rows [1]: inf)" in message
    assert ("feature column 'score' has 1 infinite value(s) and 1 value(s) beyond ±3.4e+38 "
            "(first at data rows [6, 7]: 1e+300, -inf)") in message


@pytest.mark.parametrize("value", [1e20, 1e30, 3e38])
def test_large_finite_features_are_accepted_and_standardise_to_finite_inputs(value: float) -> None:
    # Squares of these overflow float32, but standardisation runs in float64 (where they stay
    # far inside the range) before the cast, so they encode safely.
    from audit import TabularPreprocessor

    df = frame()
    df.loc[3, "age"] = value
    ds = load_dataset(df, target="income", sensitive="sex")
    X = TabularPreprocessor().fit(ds.features).transform(ds.features)
    assert X.dtype == np.float32 and np.isfinite(X).all()
    assert X[3, 0] == X[:, 0].max() > 10  # the outlier stands out; the rest stay finite


def test_encoder_refuses_extreme_values_it_is_given_directly() -> None:
    from audit import TabularPreprocessor

    feats = frame()[["age", "job"]]
    feats.loc[7, "age"] = 1e308
    with pytest.raises(DataError, match=r"feature column 'age' has 1 value\(s\) beyond .*data rows \[8\]"):
        TabularPreprocessor().fit(feats)
    pre = TabularPreprocessor().fit(frame()[["age", "job"]])
    with pytest.raises(DataError, match=r"'age' has 1 value\(s\) beyond .*\[8\]: 1e\+308"):
        pre.transform(feats)  # row numbers follow the index, as load_dataset numbers rows


@pytest.mark.parametrize("value, shown", [(np.inf, "1 infinite value(s)"), (1e20, "1 value(s) beyond ±1.84e+19"),
                                          (-1e308, "1 value(s) beyond ±1.84e+19")])
def test_regression_target_values_whose_square_overflows_float32_are_refused(value: float, shown: str) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=100), "g": ["a", "b"] * 50, "y": rng.normal(size=100)})
    df.loc[2, "y"] = value
    with pytest.raises(DataError, match=rf"^target column 'y' has {re.escape(shown)} \(first at data rows \[3\]") as info:
        load_dataset(df, target="y", sensitive="g", task="regression")
    assert info.value.param == "target"
    df.loc[2, "y"] = 1e12  # large but safe
    assert load_dataset(df, target="y", sensitive="g", task="regression").y[2] == 1e12


def test_one_column_file_says_so_and_what_to_do(tmp_path: Path) -> None:
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("age sex income\n30 F 1\n40 M 0\n")
    with pytest.raises(DataError) as info:
        load_dataset(spaced, target="income", sensitive="sex")
    message = str(info.value)
    assert message.startswith("'spaced.csv' has only one column ('age sex income'); an audit needs a "
                              "target, a sensitive and at least one feature column.")
    assert "No separator fairpriv recognises (comma, semicolon, tab or '|')" in message
    assert "names separated by spaces" in message and "e.g. one of" not in message
    assert info.value.param == "source"
    # Without target= and sensitive= the message is the same (not "pass sensitive=, e.g. one of").
    with pytest.raises(DataError, match="has only one column"):
        load_dataset(spaced)
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('"age,sex,income"\n"30,F,1"\n')
    with pytest.raises(DataError, match=r"read as comma-separated, but its lines are quoted as one field"):
        load_dataset(quoted, target="income", sensitive="sex")


def test_one_column_frame_points_at_the_separator_it_was_read_with() -> None:
    df = pd.DataFrame({"age;sex;income": ["30;F;1", "40;M;0"]})
    with pytest.raises(DataError, match=r"^'survey' has only one column \('age;sex;income'\).*"
                       r"pandas\.read_csv\(path, sep=';'\)") as info:
        load_dataset(df, name="survey", target="income", sensitive="sex")
    assert info.value.param == "source"


def test_frame_name_is_the_dataset_name_and_used_in_messages() -> None:
    ds = load_dataset(frame(), name="loans 2024", target="income", sensitive="sex")
    assert ds.name == "loans 2024" and ds.describe()["name"] == "loans 2024"  # the report title's
    assert load_dataset(frame(), target="income", sensitive="sex").name == "dataframe"
    with pytest.raises(DataError, match="no target column given for 'loans 2024'"):
        load_dataset(frame(), name="loans 2024", sensitive="sex")
    with pytest.raises(DataError, match="no sensitive column given for 'loans 2024'"):
        load_dataset(frame(), name="loans 2024", target="income")


def test_mostly_numeric_column_with_stray_text_is_an_error(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": range(60), "x": [str(i * 0.5) for i in range(60)],
                       "sex": ["M", "F"] * 30, "y": [0, 1] * 30})
    df.loc[7, "x"] = "1,5"  # a decimal comma among decimal points
    path = tmp_path / "stray.csv"
    df.to_csv(path, sep=";", index=False)
    with pytest.raises(DataError, match=r"column 'x' is numeric except for 1 cell\(s\) such as \['1,5'\]"):
        load_dataset(path, target="y", sensitive="sex")


def test_column_suggestion_ignores_case() -> None:
    df = frame().rename(columns={"income": "Income"})
    with pytest.raises(DataError, match="Did you mean 'Income'"):
        load_dataset(df, target="income", sensitive="sex")


def test_date_and_duration_features_are_read_as_days_and_noted() -> None:
    # A date column used to be parsed as text (a NaT among them: "numeric except for 0 cells"),
    # and an all-NaT one raised TypeError; dates are numbers of days now.
    df = pd.DataFrame({"y": [0, 1, 1, 0], "g": ["a", "b", "a", "b"],
                       "when": pd.to_datetime(["1970-01-02", None, "1970-01-11", "2000-01-01"]),
                       "took": pd.to_timedelta(["1 day", "36 hours", None, "0 s"])})
    ds = load_dataset(df, target="y", sensitive="g")
    assert ds.features["when"].tolist()[:1] == [1.0] and np.isnan(ds.features["when"][1])
    assert ds.features["when"][2] == 10.0 and ds.features["took"].tolist()[:2] == [1.0, 1.5]
    assert "date feature column(s) ['when'] are read as days since 1970-01-01" in ds.notes
    assert "duration feature column(s) ['took'] are read as numbers of days" in ds.notes


@pytest.mark.parametrize("options, message", [
    ({"target": "y", "sensitive": 0}, "sensitive must be text, a sequence of texts or None, not 0 (column names)"),
    ({"target": 1, "sensitive": "g"}, "target must be text or None, not 1 (a column name)"),
    ({"target": "y", "sensitive": "g", "features": ["x", 3]}, "features must be a sequence of texts or None"),
])
def test_column_roles_must_be_names(options: dict[str, object], message: str) -> None:
    from audit import ConfigError

    df = pd.DataFrame({"y": [0, 1], "g": ["a", "b"], "x": [1.0, 2.0]})
    with pytest.raises(ConfigError) as info:
        load_dataset(df, **options)
    assert str(info.value).startswith(message)


def test_generators_of_column_names_are_read_once() -> None:
    # Validating the roles must not use up a generator the loader then finds empty.
    df = pd.DataFrame({"y": [0, 1, 1, 0], "g": ["a", "b", "a", "b"], "x": [1.0, 2, 3, 4], "z": [0.0, 1, 0, 1]})
    ds = load_dataset(df, target="y", sensitive=(c for c in ["g"]), features=(c for c in ["x"]))
    assert ds.group_labels == ("a", "b") and list(ds.features.columns) == ["x"]


def test_a_text_value_and_a_column_encoding_to_one_name_is_a_data_error() -> None:
    # 'color' = 'red' one-hot encodes as 'color_red', which is also a column: scikit-learn
    # raised "Output feature names: ['color_red'] are not unique" from inside run_audit.
    from audit import TabularPreprocessor

    df = pd.DataFrame({"color": ["red", "blue"] * 5, "color_red": np.arange(10.0)})
    with pytest.raises(DataError) as info:
        TabularPreprocessor().fit(df)
    assert str(info.value).startswith(
        "two features would both be encoded as 'color_red' (column 'color_red' and the value 'red' of "
        "text column 'color')")
    assert "Rename one of the columns." in str(info.value)


def test_timezone_aware_dates_count_days_from_the_utc_epoch() -> None:
    df = pd.DataFrame({"y": [0, 1], "g": ["a", "b"],
                       "when": pd.to_datetime(["1970-01-02T00:00:00", "1970-01-03T00:00:00"]).tz_localize(
                           "Europe/Berlin")})  # midnight in Berlin is 23:00 UTC (winter time)
    ds = load_dataset(df, target="y", sensitive="g")
    assert ds.features["when"].tolist() == pytest.approx([23 / 24, 1 + 23 / 24])
