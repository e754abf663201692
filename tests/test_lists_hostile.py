"""Crafted and corrupted list files (hashmatch.lists): whatever a file holds, read_list
returns or raises ListFormatError naming the file and line (ConfigurationError only for
the caller's own arguments), never another exception; kept strings can be stored
(UTF-8, no NUL); an unterminated CSV quote never hides valid lines; and the outcome does
not depend on the chunk size. The hashes are random hex, benign values."""
from __future__ import annotations

import csv
import json
import random
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from hashmatch import lists
from hashmatch.cli import main
from hashmatch.errors import ConfigurationError, ListFormatError
from hashmatch.lists import detect_format, read_list
from hashmatch.store.store import Store

RNG = random.Random(20240611)
DEEP = 30_000


def hexhash(n: int = 64) -> str:
    return "".join(RNG.choice("0123456789abcdef") for _ in range(n))


def write(tmp_path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def fails(match: str, path: str, **kwargs) -> ListFormatError:
    with pytest.raises(ListFormatError, match=match) as info:
        read_list(path, **kwargs)
    assert info.value.path == path
    return info.value


def jsonl(*objects: str) -> str:
    return "".join(line + "\n" for line in objects)


def tat(*entries: str, wrapped: bool = False) -> str:
    body = "[\n" + ",\n".join(entries) + "\n]"
    return '{"meta": {"v": 2},\n"results": ' + body + "}" if wrapped else body


# ------------------------------------------------------------------------------ nesting


def test_deeply_nested_jsonl_line_is_a_bad_entry(tmp_path):
    a, b = hexhash(), hexhash()
    deep = "[" * DEEP + "]" * DEEP
    path = write(tmp_path, "deep.jsonl", jsonl(json.dumps({"hash": a}), f'{{"hash": "{hexhash()}", "x": {deep}}}',
                                               json.dumps({"hash": b})))
    err = fails("line 2: malformed JSON: nested too deeply", path, algorithm="pdq")
    assert err.line == 2
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert parsed.hashes == [a, b] and parsed.lines.tolist() == [1, 3]
    assert [(r.line, r.reason) for r in parsed.rejected] == [(2, "malformed JSON: nested too deeply")]


def test_deeply_nested_first_line_detects_as_jsonl(tmp_path):
    path = write(tmp_path, "deep.jsonl", '{"hash": ' + "[" * DEEP + "\n" + json.dumps({"hash": hexhash()}) + "\n")
    assert detect_format(path) == "jsonl"
    fails("line 1: malformed JSON: nested too deeply", path, algorithm="pdq")
    assert len(read_list(path, algorithm="pdq", skip_invalid=True)) == 1


@pytest.mark.parametrize("wrapped", [False, True], ids=["array", "object"])
@pytest.mark.parametrize("skip", [False, True], ids=["all-or-nothing", "skip-invalid"])
def test_deeply_nested_tat_json_names_the_entry(tmp_path, wrapped, skip):
    """json cannot parse the document at all: a whole-document error, naming the entry
    and its line, in both modes."""
    good = json.dumps({"hash_digest": hexhash(), "algorithm": "PDQ"})
    deep = '{"hash_digest": "%s", "algorithm": "PDQ",\n "x": %s}' % (hexhash(), "[" * DEEP + "]" * DEEP)
    path = write(tmp_path, "deep.json", tat(good, good.replace('"PDQ"', '"pdq"'), deep, wrapped=wrapped))
    err = fails("entry 3: malformed JSON: nested too deeply", path, skip_invalid=skip)
    assert err.line == (5 if wrapped else 4)


def test_deep_nesting_as_the_whole_document(tmp_path):
    fails("malformed JSON: nested too deeply", write(tmp_path, "d.json", "[" * DEEP + "]" * DEEP))
    fails("malformed JSON", write(tmp_path, "e.json", "[" * DEEP), format="tat-json")
    fails("malformed JSON: nested too deeply", write(tmp_path, "f.json", '{"results": ' + "[" * DEEP + "]" * DEEP
                                                                           + "}"))


# ------------------------------------------------------------------------------ numbers


def test_integer_over_the_digit_limit(tmp_path):
    """Python refuses to convert integers over sys.get_int_max_str_digits() digits
    (4300); json raised ValueError from inside the parse. Only an entry that uses the
    number is bad; one in a field hashmatch does not read is ignored."""
    big = "9" * (sys.get_int_max_str_digits() + 700)
    a, b, c = hexhash(), hexhash(), hexhash()
    lines = [f'{{"hash": "{a}", "id": {big}}}', f'{{"hash": "{b}", "notes": -{big}}}',
             f'{{"hash": "{c}", "category": {big}}}']
    path = write(tmp_path, "big.jsonl", jsonl(*lines))
    fails("line 1: 'id' is a number of 5000 digits, too long for an id", path, algorithm="pdq")
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert parsed.hashes == [b]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (1, "'id' is a number of 5000 digits, too long for an id"),
        (3, "'category' must be a string, found a number")]

    entries = [line.replace('"hash"', '"hash_digest"').replace("{", '{"algorithm": "MD5", ', 1)
               .replace(f'"{a}"', f'"{a[:32]}"').replace(f'"{b}"', f'"{b[:32]}"').replace(f'"{c}"', f'"{c[:32]}"')
               for line in lines]
    path = write(tmp_path, "big.json", tat(*entries))
    fails("line 2: entry 1: 'id' is a number of 5000 digits", path)
    parsed = read_list(path, skip_invalid=True)
    assert parsed.hashes == [b[:32]] and parsed.lines.tolist() == [3]
    assert [r.line for r in parsed.rejected] == [2, 4]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_not_ids(tmp_path, value):
    path = write(tmp_path, "nan.jsonl", jsonl(f'{{"hash": "{hexhash()}", "id": {value}}}'))
    fails("line 1: 'id' must be a string or a number, found a number", path, algorithm="pdq")


# ------------------------------------------------------------------------------ text


@pytest.mark.parametrize("key", ["category", "id", "tags", "tags-list", "file_type", "date", "algorithm", "hash"])
@pytest.mark.parametrize("escape", ["\\udcff", "\\ud800", "\\u0000"])
def test_unstorable_escapes_are_bad_entries(tmp_path, key, escape):
    """JSON may spell a lone UTF-16 surrogate or NUL; such a string cannot be stored
    (UTF-8, SQLite), so the entry is bad, with its line, in jsonl and tat-json."""
    a, b = hexhash(), hexhash()
    name = "tags" if key == "tags-list" else key
    value = f'["ok", "x{escape}"]' if key == "tags-list" else f'"x{escape}y"'
    path = write(tmp_path, "s.jsonl", jsonl(json.dumps({"hash": a, "algorithm": "pdq"}),
                                            f'{{"hash": "{b}", "algorithm": "pdq", "{name}": {value}}}'))
    err = fails("line 2: ", path)
    assert name in err.reason or "hash" in err.reason or "algorithm" in err.reason
    parsed = read_list(path, skip_invalid=True)
    assert parsed.hashes == [a] and [r.line for r in parsed.rejected] == [2]
    parsed.rejected[0].reason.encode("utf-8")  # the report can be written

    tat_key = {"category": "ideology", "date": "created_on", "hash": "hash_digest", "tags-list": "tags"}.get(key, key)
    path = write(tmp_path, "s.json", tat(json.dumps({"hash_digest": a, "algorithm": "PDQ"}),
                                         f'{{"hash_digest": "{b}", "algorithm": "PDQ", "{tat_key}": {value}}}'))
    fails("line 3: entry 2: ", path)
    parsed = read_list(path, skip_invalid=True)
    assert parsed.hashes == [a] and [r.line for r in parsed.rejected] == [3]


def test_surrogate_pairs_and_escapes_elsewhere_are_fine(tmp_path):
    """A proper pair (an emoji) is text; a lone surrogate in a field hashmatch does not
    keep (notes) or in a key is harmless."""
    a = hexhash()
    path = write(tmp_path, "ok.jsonl", jsonl(f'{{"hash": "{a}", "category": "x\\ud83d\\ude00", "notes": "\\udcff", '
                                             f'"\\udcff": 1, "tags": ["caf\\u00e9"]}}'))
    parsed = read_list(path, algorithm="pdq")
    assert parsed.categories == ["x\U0001F600"] and parsed.tags == [("caf\u00e9",)]


@pytest.mark.parametrize("fmt", ["text", "csv", "tsv", "tx-csv", "jsonl", "tat-json"])
def test_encoded_surrogate_bytes_are_not_utf8(tmp_path, fmt):
    """Raw bytes of a surrogate (ED B3 BF, as Python's surrogateescape or CESU-8 write
    them) are not UTF-8: a whole-file error naming the line, in every format, so no
    surrogate reaches an entry from a text format."""
    h = hexhash()
    bad = b"\xed\xb3\xbf"
    content = {
        "text": b"pdq " + h.encode() + b"\npdq " + bad + b"\n",
        "csv": b"hash,category\n" + h.encode() + b",x\n" + h.encode() + b",a" + bad + b"\n",
        "tsv": b"hash\tcategory\n" + h.encode() + b"\tx\n" + h.encode() + b"\ta" + bad + b"\n",
        "tx-csv": b"collab,signal_type,signal_str,category,tags\nc,pdq," + h.encode() + b",POSITIVE_CLASS,a\n"
                  b"c,pdq," + h.encode() + b",POSITIVE_CLASS,t" + bad + b"\n",
        "jsonl": b'{"hash": "' + h.encode() + b'"}\n{"hash": "' + h.encode() + b'", "category": "' + bad + b'"}\n',
        "tat-json": b'[{"hash_digest": "' + h.encode() + b'", "algorithm": "PDQ"},\n{"hash_digest": "' + h.encode()
                    + b'", "algorithm": "PDQ", "ideology": "' + bad + b'"}]',
    }[fmt]
    path = write(tmp_path, "s.list", content)
    for skip in (False, True):
        err = fails("not UTF-8 text", path, format=fmt, algorithm="pdq", skip_invalid=skip)
        assert err.line == (3 if fmt in ("csv", "tsv", "tx-csv") else 2)


# ------------------------------------------------------------------------------ types


@pytest.mark.parametrize("key,value,reason", [
    ("hash", "12", "'hash' must be a string, found a number"),
    ("hash", "null", "'hash' must be a string, found null"),
    ("hash", '["a"]', "'hash' must be a string, found an array"),
    ("algorithm", "{}", "'algorithm' must be a string, found an object"),
    ("category", "true", "'category' must be a string, found a boolean"),
    ("id", "[1]", "'id' must be a string or a number, found an array"),
    ("id", "false", "'id' must be a string or a number, found a boolean"),
    ("tags", "7", "'tags' must be a list of strings or a string, found a number"),
    ("tags", "[1, 2]", "'tags' must be a list of strings or a string, found an array"),
    ("tags", '{"a": "b"}', "'tags' must be a list of strings or a string, found an object"),
    ("date", "20240101", "'date' must be a string, found a number"),
    ("deleted", "[]", "'deleted' must be true or false, found an array"),
    ("deleted", '"maybe"', "'deleted' must be true or false, found 'maybe'"),
    ("deleted", "2.5", "'deleted' must be true or false, found a number"),
])
def test_wrong_json_types_are_bad_entries(tmp_path, key, value, reason):
    fields = {"hash": f'"{hexhash()}"', "algorithm": '"pdq"', key: value}
    line = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    path = write(tmp_path, "t.jsonl", jsonl(json.dumps({"hash": hexhash(), "algorithm": "pdq"}), line))
    err = fails("line 2", path)
    assert err.reason == reason
    assert len(read_list(path, skip_invalid=True)) == 1


@pytest.mark.parametrize("entry", ["12", '"x"', "null", "[]", "[[1]]"])
def test_tat_entries_that_are_not_objects(tmp_path, entry):
    path = write(tmp_path, "t.json", tat(json.dumps({"hash_digest": hexhash(), "algorithm": "PDQ"}), entry))
    fails("line 3: entry 2: expected a JSON object", path)
    assert len(read_list(path, skip_invalid=True)) == 1


def test_many_keys(tmp_path):
    """An object with thousands of keys (and thousands of distinct key sets) is read
    like any other; the key cache stays bounded."""
    rows = [json.dumps({"hash": hexhash(), **{f"k{i}_{j}": j for j in range(RNG.randint(1, 80))}})
            for i in range(5000)]
    rows.append(json.dumps({"hash": hexhash(), **{f"x{j}": j for j in range(4000)}}))  # 50 KB: under the cap
    parsed = read_list(write(tmp_path, "k.jsonl", jsonl(*rows)), algorithm="pdq")
    assert len(parsed) == 5001


# ------------------------------------------------------------------------------ jsonl lines


def test_each_jsonl_line_must_be_one_value(tmp_path):
    """The bulk parse of a chunk must not let fragments on two lines pair up as one
    object, nor a line holding two objects count as two lines (crafted so that the
    number of values still equals the number of lines)."""
    good, h1, h2, h3 = hexhash(), hexhash(), hexhash(), hexhash()
    path = write(tmp_path, "frag.jsonl", jsonl(
        json.dumps({"hash": good}),
        f'{{"hash": "{h1}", "a": [[{{"x": 1}}',  # a fragment ...
        '{"y": 2}]]}',  # ... and its end
        f'{{"hash": "{h2}"}}, {{"hash": "{h3}"}}',  # two objects on one line
    ))
    fails("line 2: malformed JSON", path, algorithm="pdq")
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert parsed.hashes == [good]
    assert [(r.line, r.reason.split(":")[0]) for r in parsed.rejected] == [
        (2, "malformed JSON"), (3, "malformed JSON"), (4, "malformed JSON")]


# ------------------------------------------------------------------------------ the CLI


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_unterminated_quote_before_200000_lines(tmp_path):
    """The audit's case end to end: --skip-invalid imports all 200,000 valid lines and
    reports line 2 with the range; without it, nothing is imported, exit 2."""
    rng = np.random.default_rng(11)
    good = [row.tobytes().hex() for row in rng.integers(0, 256, (200_000, 32), dtype=np.uint8)]
    path = write(tmp_path, "audit.csv", f'hash,category\n{"ab" * 32},"never closed\n'
                                        + "".join(f"{h},terrorism\n" for h in good))
    store, rejects = tmp_path / "store", tmp_path / "rejects.csv"
    code, _, err = cli("list", "import", path, "--store", store, "--algorithm", "pdq")
    assert code == 2 and "line 2: malformed CSV: a quoted field opened at line 2 runs over 65536 bytes, to line" in err
    code, _, err = cli("list", "import", path, "--store", store, "--algorithm", "pdq", "--skip-invalid",
                       "--rejects", rejects)
    assert code == 0, err
    assert Store.open(store).lists()[0].entries == 200_000
    with open(rejects, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 2 and rows[1][0] == "2"
    assert "opened at line 2 runs over 65536 bytes, to line" in rows[1][1]


def test_cli_hostile_json_exits_2_not_a_traceback(tmp_path):
    store = tmp_path / "store"
    sur = write(tmp_path, "sur.jsonl", jsonl(json.dumps({"hash": hexhash()}),
                                             f'{{"hash": "{hexhash()}", "category": "\\udcff"}}'))
    code, _, err = cli("list", "import", sur, "--store", store, "--algorithm", "pdq")
    assert code == 2 and "line 2: 'category' holds a lone surrogate" in err
    code, _, err = cli("list", "import", sur, "--store", store, "--algorithm", "pdq", "--skip-invalid",
                       "--rejects", tmp_path / "r.csv")
    assert code == 0, err
    deep = write(tmp_path, "deep.json", tat(json.dumps({"hash_digest": hexhash(), "algorithm": "PDQ"}),
                                            '{"x": ' + "[" * DEEP + "]" * DEEP + "}"))
    code, _, err = cli("list", "import", deep, "--store", store, "--skip-invalid")
    assert code == 2 and "line 3: entry 2: malformed JSON: nested too deeply" in err


# ------------------------------------------------------------------------------ fuzzing


def _seeds(r: random.Random) -> dict[str, str]:
    def h(n: int = 64) -> str:
        return "%0*x" % (n, r.getrandbits(4 * n))

    return {
        "text": f"# c\npdq {h()}\nmd5 {h(32)}\n{h()}\n",
        "csv": f'hash,algorithm,category,id,date,tags\n{h()},pdq,"a, b",1,2024-01-02,x;y\n'
               f'{h(32)},md5,"multi\nline",2,,\n{h()},pdq,c,3,,\n',
        "tsv": f'hash\talgorithm\tcategory\n{h()}\tpdq\tx\n{h(40)}\tsha1\t"q"\n',
        "jsonl": json.dumps({"hash": h(), "algorithm": "pdq", "category": "c", "id": 5, "tags": ["a"],
                             "date": "2024-01-01"}) + "\n" + json.dumps({"hash": h(32), "algorithm": "md5"}) + "\n",
        "tx-csv": f"collab,signal_type,signal_str,category,tags\nc,pdq,{h()},POSITIVE_CLASS,a b\n"
                  f"c,video_md5,{h(32)},DISPUTED,\n",
        "tat-json": json.dumps({"results": [
            {"hash_digest": h(), "algorithm": "PDQ", "ideology": "x", "file_type": "jpg", "id": 1,
             "created_on": "2024-01-01T00:00:00Z", "deleted": False},
            {"hash_digest": h(32), "algorithm": "MD5", "deleted": True}]}, indent=1),
        "vpdq-txt": "".join(f"{i},{r.randrange(101)},{h()},{i / 30:.3f}\n" for i in range(5)),
    }


_INSERTS = [b'"', b"\\udcff", b"\\u0000", b"[" * 3000, b"{", b"}", b"]", b",", b"\n", b"\r", b"\t", b"1" * 5000,
            b"\xff", b"\xed\xb3\xbf", b"\x00", b"#", b"NaN", b"-", b"1e999", b"null", b"true", b"[]", b"{}",
            b'"\n"', b"\\", b"\xef\xbb\xbf", "\u00a0".encode()]
_VALUES = ['"\\udcff"', '"a\\u0000b"', "1" * 5000, "[" * 3000 + "]" * 3000, "NaN", "-Infinity", "1e999", "[1, 2]",
           '{"a": 1}', "null", "true", "0", "-1.5", '["\\udcff"]', "[null]", '""', '"\\ud83d\\ude00"',
           '{"a": ' * 2000 + "1" + "}" * 2000]
_KEYS = ["hash", "algorithm", "category", "id", "tags", "date", "deleted", "file_type", "notes", "hash_digest",
         "ideology", "created_on"]


def _mutate(r: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(r.randint(1, 4)):
        pos = r.randrange(len(b) + 1)
        op = r.random()
        if op < 0.3 and b:
            b[min(pos, len(b) - 1)] = r.randrange(256)
        elif op < 0.6:
            b[pos:pos] = r.choice(_INSERTS)
        elif op < 0.8 and b:
            del b[pos:pos + r.randint(1, 8)]
        else:
            b[pos:pos] = bytes(r.randrange(32, 127) for _ in range(r.randint(1, 5)))
    return bytes(b)


def _structured(r: random.Random, fmt: str) -> bytes:
    """A valid entry with one field set to a hostile JSON value."""
    h = "%064x" % r.getrandbits(256)
    key, value = r.choice(_KEYS), r.choice(_VALUES)
    if fmt == "jsonl":
        return (json.dumps({"hash": "%064x" % r.getrandbits(256)}) + "\n"
                + f'{{"hash": "{h}", "algorithm": "pdq", "{key}": {value}}}\n').encode()
    return (f'{{"results": [{{"hash_digest": "{h}", "algorithm": "PDQ", "{key}": {value}}}, '
            f'{{"hash_digest": "{h[:32]}", "algorithm": "MD5"}}]}}').encode()


def _check_storable(parsed) -> None:
    for column in (parsed.algorithms, parsed.hashes, parsed.categories, parsed.entry_ids, parsed.dates):
        for value in column:
            if value is not None:
                value.encode("utf-8")
                assert "\0" not in value
    for tags in parsed.tags:
        for tag in tags:
            tag.encode("utf-8")
            assert "\0" not in tag
    for r in parsed.rejected:
        (r.reason + r.text).encode("utf-8")


@pytest.mark.parametrize("fmt", lists.FORMATS)
def test_fuzzed_files_raise_only_list_format_errors(tmp_path, fmt):
    """2,000 mutated small files per format (byte flips, insertions of hostile
    fragments, deletions; JSON formats also a hostile value in each field), read as
    that format and detected, in both modes."""
    r = random.Random(f"hostile-{fmt}")
    seed = _seeds(r)[fmt].encode()
    for i in range(2000):
        data = _structured(r, fmt) if fmt in ("jsonl", "tat-json") and i % 2 else _mutate(r, seed)
        path = write(tmp_path, f"f{i % 10}", data)
        forced = i % 2 == 0
        try:
            parsed = read_list(path, format=fmt if forced else None, algorithm="pdq", skip_invalid=i % 4 < 2)
        except (ListFormatError, ConfigurationError) as exc:
            str(exc).encode("utf-8")
            continue
        except Exception as exc:  # pragma: no cover - the failure being tested for
            pytest.fail(f"{type(exc).__name__}: {exc} reading {data[:300]!r}")
        _check_storable(parsed)


def _chunk_case(r: random.Random) -> tuple[str, bytes]:
    fmt = r.choice(["csv", "tsv", "tx-csv", "jsonl"])
    d = "\t" if fmt == "tsv" else ","
    lines = ["collab,signal_type,signal_str,category,tags" if fmt == "tx-csv" else
             "" if fmt == "jsonl" else d.join(["hash", "category", "id", "tags"])]
    for i in range(r.randint(1, 30)):
        h = "%064x" % r.getrandbits(256)
        if fmt == "tx-csv":
            lines.append(f"c,pdq,{h}," + r.choice(["POSITIVE_CLASS", "DISPUTED", '"POSITIVE_CLASS"']) + ",a b")
        elif fmt == "jsonl":
            lines.append(json.dumps({"hash": h, "category": r.choice(["a", "b\nc"])}))
        else:
            cat = r.choice(["x", '"a, b"', '"multi\nline"', '"q""q"', "plain"])
            lines.append(d.join([h, cat, str(i), r.choice(["", "t;u", '"t\nu"'])]))
    data = bytearray("\n".join(lines).lstrip("\n").encode() + b"\n")
    for _ in range(r.randint(0, 3)):
        pos = r.randrange(len(data) + 1)
        data[pos:pos] = r.choice([b'"', b'"', b"\n", d.encode(), b"x", b"\r\n", b'""', b"\t", b" \n",
                                  "\u00a0\n".encode(), b"#", b"\n\n"])
    return fmt, bytes(data)


def test_outcome_does_not_depend_on_the_chunk_size(tmp_path, monkeypatch):
    """Stray quotes, line breaks and delimiters in CSV/TSV/tx-csv/jsonl: the entries,
    the rejections or the error are the same whatever the chunk size (quoted fields
    cut by chunk boundaries, records given back and read again)."""
    r = random.Random(20240612)
    default = lists.CHUNK_BYTES
    for _ in range(150):
        fmt, data = _chunk_case(r)
        path = write(tmp_path, "c.list", data)
        for skip in (False, True):
            outcomes = []
            for chunk in (default, 1, 7, 64, 301):
                monkeypatch.setattr(lists, "CHUNK_BYTES", chunk)
                try:
                    parsed = read_list(path, format=fmt, skip_invalid=skip, algorithm="pdq", max_line_bytes=300)
                    outcomes.append((list(parsed), parsed.rejected, parsed.retracted, parsed.merged))
                except ListFormatError as exc:
                    outcomes.append((exc.line, exc.reason))
            assert all(o == outcomes[0] for o in outcomes), (data, outcomes)
