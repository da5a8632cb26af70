from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import DataError, DataFileError
from audit.data._readers import clean_frame, read_table


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(("delim", "ext"), [(",", "csv"), (";", "txt"), ("\t", "tsv"), ("|", "data")])
def test_delimiter_sniffed_for_any_extension(tmp_path: Path, delim: str, ext: str) -> None:
    text = delim.join(["a", "b", "label"]) + "\n" + "\n".join(
        delim.join([str(i), f"x{i % 3}", str(i % 2)]) for i in range(20))
    frame = read_table(write(tmp_path, f"f.{ext}", text))
    assert list(frame.columns) == ["a", "b", "label"]
    assert frame.shape == (20, 3)
    assert pd.api.types.is_numeric_dtype(frame["a"])
    assert frame["b"].iloc[4] == "x1"


def test_whitespace_stripped_and_missing_markers(tmp_path: Path) -> None:
    text = " age , job ,  y \n 39, State-gov , <=50K\n ?, ?,>50K\n41,NA, <=50K\n 50 ,, >50K.\n"
    frame = read_table(write(tmp_path, "a.data", text))
    assert list(frame.columns) == ["age", "job", "y"]
    assert frame["job"].iloc[0] == "State-gov"
    assert frame["age"].isna().sum() == 1
    assert frame["job"].isna().sum() == 3
    assert frame["age"].dropna().tolist() == [39, 41, 50]


def test_custom_na_values(tmp_path: Path) -> None:
    text = "a,b\n1,missing\n2,x\n"
    frame = read_table(write(tmp_path, "c.csv", text), na_values=("missing",))
    assert frame["b"].isna().tolist() == [True, False]


def test_parquet_recognised_by_magic_bytes(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [" x ", "?"]})
    path = tmp_path / "data.bin"
    df.to_parquet(path)
    frame = read_table(path)
    assert frame["b"].iloc[0] == "x"
    assert frame["b"].isna().iloc[1]


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="is empty"):
        read_table(write(tmp_path, "e.csv", "  \n"))


def test_header_only(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no data rows"):
        read_table(write(tmp_path, "h.csv", "a,b,c\n"))


def test_binary_garbage(tmp_path: Path) -> None:
    blob = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)) + b"\x00"
    with pytest.raises(DataFileError, match="looks binary"):
        read_table(write(tmp_path, "g.csv", blob))


def test_unreadable_encoding(tmp_path: Path) -> None:
    raw = "name,y\nJos\u00e9,1\nAna,0\n".encode("latin-1")
    path = write(tmp_path, "l.csv", raw)
    with pytest.raises(DataFileError, match="cannot decode .* as utf-8-sig .*encoding='latin-1'"):
        read_table(path)
    assert read_table(path, encoding="latin-1")["name"].iloc[0] == "Jos\u00e9"


def test_unknown_encoding_name(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="unknown encoding 'nope'"):
        read_table(write(tmp_path, "u.csv", "a\n1\n"), encoding="nope")


def test_ragged_rows_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="line 3 .* has 2 fields but the header has 3"):
        read_table(write(tmp_path, "r.csv", "a,b,c\n1,2,3\n4,5\n"))


def test_duplicate_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"duplicate column name\(s\) \['a'\]"):
        read_table(write(tmp_path, "d.csv", "a,b,a\n1,2,3\n"))


def test_duplicate_after_stripping_in_frame() -> None:
    df = pd.DataFrame([[1, 2]], columns=["x", " x "])
    with pytest.raises(DataError, match="duplicate column"):
        clean_frame(df)


def test_empty_column_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"column\(s\) \[2\] .* empty name"):
        read_table(write(tmp_path, "n.csv", "a,,c\n1,2,3\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="not found"):
        read_table(tmp_path / "nope.csv")


def test_boolean_strings_become_booleans() -> None:
    frame = clean_frame(pd.DataFrame({"flag": ["True", "false", None]}))
    assert frame["flag"].tolist()[:2] == [True, False]


def test_skip_prefix_and_no_header(tmp_path: Path) -> None:
    path = write(tmp_path, "u.test", "|1x3 Cross validator\n1, a\n2, b\n")
    frame = read_table(path, header=False, names=["n", "s"], skip_prefix="|")
    assert frame["s"].tolist() == ["a", "b"]
