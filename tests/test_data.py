import numpy as np
import pandas as pd
import pytest

from onnxship.core.errors import UserError
from onnxship.core.params import DataParams
from onnxship.train import data
from tests.conftest import CHURN_PARAMS, churn_raw


def write(tmp_path, text: str):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return path


def test_roles_inferred_from_the_bundled_csv():
    roles = data.infer_roles(churn_raw(), CHURN_PARAMS)
    assert roles.categorical == ["state", "area_code", "international_plan", "voice_mail_plan"]
    assert len(roles.numeric) == 15 and "churn" not in roles.features


def test_overrides_and_drop_are_honoured():
    params = CHURN_PARAMS.model_copy(
        update={"categorical": ["number_customer_service_calls"], "drop": ["state"]}
    )
    roles = data.infer_roles(churn_raw(), params)
    assert "number_customer_service_calls" in roles.categorical
    assert "number_customer_service_calls" not in roles.numeric
    assert "state" not in roles.features


def test_features_use_the_contract_encoding(tmp_path):
    frame = data.read_csv(write(tmp_path, "x,c,y\n1.5,a,1\n,,0\nNA,b,1\n"))
    params = DataParams(path="d.csv", target="y", positive_label=1)
    roles = data.infer_roles(frame, params)
    X = data.features(frame, roles)
    assert roles.numeric == ["x"] and roles.categorical == ["c"]
    assert X["x"].dtype == np.float32 and np.isnan(X["x"].iloc[1]) and np.isnan(X["x"].iloc[2])
    assert X["c"].tolist() == ["a", "", "b"]
    assert data.target(frame, params).tolist() == [1, 0, 1]


def test_categorical_keeps_the_text_written_in_the_file(tmp_path):
    # Read as numbers, "007" would become 7.0; as a declared category it stays "007".
    frame = data.read_csv(write(tmp_path, "zip,y\n007,a\n10,b\n"))
    params = DataParams(path="d.csv", target="y", positive_label="a", categorical=["zip"])
    X = data.features(frame, data.infer_roles(frame, params))
    assert X["zip"].tolist() == ["007", "10"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("a,b,y\n", "no data rows"),
        ("a,a,y\n1,2,x\n", "duplicate column names ['a']"),
    ],
)
def test_bad_files(tmp_path, text, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        data.read_csv(write(tmp_path, text))


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        data.read_csv(tmp_path / "nope.csv")
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(UserError, match="not a text CSV file"):
        data.read_csv(tmp_path / "b.csv")
    (tmp_path / "latin1.csv").write_bytes("a,y\n1,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8 text"):
        data.read_csv(tmp_path / "latin1.csv")


def test_target_problems(tmp_path):
    frame = data.read_csv(write(tmp_path, "a,y\n1,p\n2,q\n3,r\n"))
    with pytest.raises(UserError, match="exactly two values"):
        data.target(frame, DataParams(path="d.csv", target="y", positive_label="p"))
    with pytest.raises(UserError, match=r"positive label 'z' is not a value"):
        data.target(frame, DataParams(path="d.csv", target="y", positive_label="z"))
    with pytest.raises(UserError, match=r"column 'label' from params\.yaml is not in the CSV"):
        data.infer_roles(frame, DataParams(path="d.csv", target="label", positive_label="p"))


def test_numeric_column_with_stray_text_names_row_and_column(tmp_path):
    frame = data.read_csv(write(tmp_path, "a,y\n1,p\noops,q\n"))
    roles = data.infer_roles(frame, DataParams(path="d.csv", target="y", positive_label="p", numeric=["a"]))
    with pytest.raises(UserError, match=r"numeric column 'a' has text 'oops' \(data row 2\)"):
        data.features(frame, roles)


def test_all_missing_column_is_found():
    frame = pd.DataFrame({"n": ["", "NA"], "c": ["", ""], "ok": ["1", "2"], "y": ["a", "b"]})
    roles = data.Roles(numeric=["n", "ok"], categorical=["c"])
    assert data.all_missing_columns(frame, roles) == ["n", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e39", r"numeric column 'a' has an infinite or out-of-float32-range value '1e39' \(data row 2\)"),
        ("-1e39", r"numeric column 'a' has an infinite or out-of-float32-range value '-1e39' \(data row 2\)"),
        # The contract's number syntax has no infinity: such text is refused like any other.
        ("inf", r"numeric column 'a' has text 'inf' \(data row 2\)"),
        ("-Infinity", r"numeric column 'a' has text '-Infinity' \(data row 2\)"),
    ],
)
def test_infinite_numbers_are_refused_with_row_and_column(tmp_path, text, message):
    frame = data.read_csv(write(tmp_path, f"a,y\n1,p\n{text},q\n"))
    roles = data.Roles(numeric=["a"], categorical=[])
    with pytest.raises(UserError, match=message):
        data.features(frame, roles)


def test_numbers_are_read_with_the_contract_rule(tmp_path):
    """Training reads a numeric cell exactly as every client does: the contract's number syntax."""
    frame = data.read_csv(write(tmp_path, "a,y\n 12.5\t,p\n1e3,q\nNA,p\n-.5,q\n"))
    roles = data.infer_roles(frame, DataParams(path="d.csv", target="y", positive_label="p"))
    assert roles.numeric == ["a"]
    values = data.features(frame, roles)["a"].tolist()
    assert values[:2] == [12.5, 1000.0] and np.isnan(values[2]) and values[3] == -0.5
    # pandas would read these as numbers; the contract does not, so the column is categorical.
    for text in ("1_000", "0x10", "\u0663"):
        odd = data.read_csv(write(tmp_path, f"a,y\n1,p\n{text},q\n"))
        assert data.infer_roles(
            odd, DataParams(path="d.csv", target="y", positive_label="p")
        ).categorical == ["a"]


def rows(n: int, cell: str = "u") -> str:
    return "".join(f"{i % 7},{cell},{'pq'[i % 3 == 0]}\n" for i in range(n))


# Files the scorer refuses: training refuses them too, with the very same message.
REFUSED = [
    # A row whose last field is missing: never padded with a missing value.
    (
        "last field missing",
        b"a,c,y\n1,u,p\n2,v\n3,u,q\n",
        "row 2 (line 3): has 2 fields but the header has 3",
    ),
    ("a field too many", b"a,c,y\n1,u,p\n2,v,q,x\n", "row 2 (line 3): has 4 fields but the header has 3"),
    ("late bad UTF-8", ("a,c,y\n" + rows(50)).encode() + b"1,caf\xe9,p\n", "line 52 is not UTF-8 text"),
    ("unterminated quote", b'a,c,y\n1,u,p\n2,"v,q\n', "line 3 is not valid CSV (unexpected end of data)"),
    ("text after a closing quote", b'a,c,y\n1,"u"x,p\n', "line 2 is not valid CSV (',' expected after '\"')"),
]


# A NUL byte: training refuses the whole file (pandas and ONNX Runtime would cut a string at it); the
# scorer refuses the record in its column (tests/corpus input-nul-in-category), as the Node client does.
NUL_FILES = [
    # Past the first 64 KiB (where the old reader stopped looking): no value is cut short.
    ("late NUL", ("a,c,y\n" + rows(3000, "u" * 30)).encode() + b"1,ab\x00cd,p\n", "line 3002 has a NUL byte"),
    ("NUL in the header", b"a,c\x00,y\n1,u,p\n", "line 1 has a NUL byte"),
]


@pytest.mark.parametrize(("name", "raw", "message"), NUL_FILES, ids=[case[0] for case in NUL_FILES])
def test_training_refuses_a_nul_byte_anywhere(tmp_path, name, raw, message):
    path = tmp_path / "d.csv"
    path.write_bytes(raw)
    with pytest.raises(UserError, match=message):
        data.read_csv(path)


def test_cr_only_line_ends_read_as_the_scorer_reads_them(tmp_path):
    from onnxship.serve.files import read_csv_records

    path = tmp_path / "d.csv"
    path.write_bytes(b"a,c,y\r1,u,p\r2,v,q\r")
    frame = data.read_csv(path)
    assert frame.to_dict("records") == read_csv_records(path) == [
        {"a": "1", "c": "u", "y": "p"},
        {"a": "2", "c": "v", "y": "q"},
    ]


@pytest.mark.parametrize(("name", "raw", "message"), REFUSED, ids=[case[0] for case in REFUSED])
def test_training_refuses_what_the_scorer_refuses_with_its_message(tmp_path, name, raw, message):
    from onnxship.serve.files import read_csv_records

    path = tmp_path / "d.csv"
    path.write_bytes(raw)
    with pytest.raises(UserError) as trained:
        data.read_csv(path)
    with pytest.raises(UserError) as scored:
        read_csv_records(path)
    assert message in str(trained.value), name
    assert str(trained.value) == str(scored.value), name


def test_bom_crlf_and_blank_lines_read_as_the_scorer_reads_them(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbfa,c,y\r\n1,u,p\r\n\r\n2,,q\r\n")
    frame = data.read_csv(path)
    assert list(frame.columns) == ["a", "c", "y"]
    from onnxship.serve.files import read_csv_records

    assert frame.to_dict("records") == read_csv_records(path)


def test_a_column_of_only_missing_tokens_is_empty_not_a_category(tmp_path):
    frame = data.read_csv(
        write(tmp_path, "a,n,m,y\n" + "".join(f"{i},NA,{['', 'null'][i % 2]},p\n" for i in range(4)))
    )
    roles = data.infer_roles(frame, DataParams(path="d.csv", target="y", positive_label="p"))
    assert roles.numeric == ["a", "n", "m"] and roles.categorical == []
    assert data.all_missing_columns(frame, roles) == ["n", "m"]


def test_integer_row_numbers_are_id_like_unless_listed(tmp_path):
    text = "n,a,y\n" + "".join(f"{i + 1},{i % 7},{'pq'[i % 3 == 0]}\n" for i in range(120))
    frame = data.read_csv(write(tmp_path, text))
    typed = data.type_columns(frame, DataParams(path="d.csv", target="y", positive_label="p"))
    assert typed.roles.id_like == ["n"] and typed.roles.numeric == ["a"]
    assert "strictly increase" in typed.id_reasons["n"]
    kept = data.infer_roles(frame, DataParams(path="d.csv", target="y", positive_label="p", numeric=["n"]))
    assert kept.numeric == ["n", "a"] and kept.id_like == []


def test_parsed_numbers_equal_a_fresh_read(tmp_path):
    """The frame built from role inference's parse is the frame features() builds on its own."""
    text = "a,b,c,y\n" + "".join(
        f"{i % 3},{i * 0.25 if i % 5 else 'NA'},{'uv'[i % 2]},p\n" for i in range(30)
    )
    frame = data.read_csv(write(tmp_path, text))
    typed = data.type_columns(frame, DataParams(path="d.csv", target="y", positive_label="p"))
    pd.testing.assert_frame_equal(
        data.features(frame, typed.roles, typed.parsed), data.features(frame, typed.roles)
    )


def test_a_wide_table_reads_as_its_columns_do_one_by_one(tmp_path):
    # 300 numeric columns, each distinct cell parsed once (table.numbers); the frame is
    # the one the column-by-column rule gives, and a bad cell still names its column and row.
    from onnxship.train import table
    from tools.wide_table import CATEGORICAL, POSITIVE, TARGET, write_wide

    path = tmp_path / "wide.csv"
    write_wide(path, 200, 300, seed=3)
    frame = data.read_csv(path)
    roles = data.infer_roles(frame, DataParams(path=str(path), target=TARGET, positive_label=POSITIVE))
    assert len(roles.numeric) == 300 and len(roles.categorical) == CATEGORICAL
    X = data.features(frame, roles)
    for name in roles.numeric:
        alone = np.asarray(table._numbers(frame[name], name))
        assert np.array_equal(X[name].to_numpy(), alone, equal_nan=True)
    assert X[roles.numeric].isna().to_numpy().any() and set(X.dtypes.astype(str)) == {"float32", "object"}
    frame.loc[7, "x0290"] = "1e39"
    frame.loc[9, "x0299"] = "n/a"
    with pytest.raises(UserError, match=r"numeric column 'x0290' has an infinite .* '1e39' \(data row 8\)"):
        data.features(frame, roles)
