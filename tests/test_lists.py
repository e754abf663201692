"""Hash-list reading and writing (hashmatch.lists): every format, detection, round trips,
and each kind of bad input reported with its file, line and reason. The lists here are
random hex generated per test: benign values, no real list content."""
from __future__ import annotations

import base64
import csv
import json
import os
import random
import stat
import tracemalloc

import numpy as np
import pytest

from hashmatch import lists, signals
from hashmatch.errors import ConfigurationError, HashmatchError, ListFormatError
from hashmatch.lists import ParsedList, Rejected, Retracted, detect_format, read_list, write_list, write_rejects
from hashmatch.signals.hasher import HEX_LENGTH

RNG = random.Random(20240517)


def hexhash(algorithm: str = "pdq") -> str:
    return "".join(RNG.choice("0123456789abcdef") for _ in range(HEX_LENGTH[algorithm]))


def write(tmp_path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return str(path)


def entries(parsed: ParsedList) -> list[tuple]:
    """Everything but the line numbers, to compare lists read from different files."""
    return [e[:6] for e in parsed]


def fails(match: str, path: str, **kwargs) -> ListFormatError:
    with pytest.raises(ListFormatError, match=match) as info:
        read_list(path, **kwargs)
    assert info.value.path == path
    assert info.value.code == "list_format"
    return info.value


@pytest.fixture(params=[None, 7, 64], ids=["chunk-default", "chunk-7", "chunk-64"])
def chunked(request, monkeypatch):
    """Run a test with the default chunk size and with tiny chunks, so that every chunk
    boundary case (inside a line, a CRLF, a quoted field, a UTF-8 character) occurs."""
    if request.param is not None:
        monkeypatch.setattr(lists, "CHUNK_BYTES", request.param)
    return request.param


# ------------------------------------------------------------------------------ formats


def test_text_with_prefixes_comments_and_blank_lines(tmp_path, chunked):
    a, b, m = hexhash(), hexhash(), hexhash("md5")
    path = write(tmp_path, "list.txt", f"# exported list\n\npdq {a}\n  \npdq {b.upper()}\r\nmd5 {m}\n# end\n")
    parsed = read_list(path)
    assert parsed.format == "text"
    assert parsed.algorithms == ["pdq", "pdq", "md5"]
    assert parsed.hashes == [a, b, m]  # upper-case hex normalised
    assert parsed.lines.tolist() == [3, 5, 6]
    assert parsed.categories == [None] * 3
    assert parsed.rejected == [] and parsed.retracted == []
    assert len(parsed) == 3


def test_text_without_prefix_needs_an_algorithm(tmp_path):
    path = write(tmp_path, "bare.txt", f"{hexhash()}\n{hexhash()}\n")
    err = fails("no algorithm: pass --algorithm", path)
    assert err.line == 1
    # skip_invalid cannot help: it is not a per-line problem
    fails("no algorithm", path, skip_invalid=True)
    parsed = read_list(path, algorithm="PDQ", category="csam")
    assert parsed.algorithms == ["pdq", "pdq"]
    assert parsed.categories == ["csam", "csam"]


def test_text_prefix_wins_over_the_default_and_irregular_whitespace(tmp_path, chunked):
    a, m, s = hexhash(), hexhash("md5"), hexhash("sha1")
    path = write(tmp_path, "mixed.txt", f"{a}\nmd5\t{m}\n  SHA-1   {s}  \n")
    parsed = read_list(path, algorithm="pdq")
    assert list(zip(parsed.algorithms, parsed.hashes)) == [("pdq", a), ("md5", m), ("sha1", s)]


def test_csv_columns_found_by_name(tmp_path, chunked):
    a, b = hexhash(), hexhash("md5")
    path = write(tmp_path, "list.csv",
                 "Hash_Value,Hash_Type,Labels,Hash_ID,Created_At,Tags,Notes\n"
                 f"{a},PDQ,csam,id-1,2024-01-02,x;y,ignored\n"
                 f" {b.upper()} ,MD5, ncii ,id-2,2024-01-02T10:11:12Z,,\n")
    parsed = read_list(path)
    assert parsed.format == "csv"
    assert list(parsed) == [
        ("pdq", a, "csam", "id-1", "2024-01-02", ("x", "y"), 2),
        ("md5", b, "ncii", "id-2", "2024-01-02T10:11:12Z", (), 3),
    ]


def test_csv_quoted_fields_span_lines_and_chunks(tmp_path, chunked):
    rows, expected = [], []
    for i in range(30):
        h = hexhash()
        category = f"multi\nline, {i}" if i % 4 == 0 else f"plain {i}"
        rows.append(f'"{h}","{category}",{i}' if i % 4 == 0 else f"{h},{category},{i}")
        expected.append(("pdq", h, category, str(i), None, ()))
    path = write(tmp_path, "quoted.csv", "# comment\nhash,category,id\n" + "\n".join(rows) + "\n\n")
    parsed = read_list(path, algorithm="pdq")
    assert entries(parsed) == expected
    assert parsed.lines[:3].tolist() == [3, 5, 6]  # the multi-line record counts two lines


def test_csv_comments_only_before_the_header(tmp_path, chunked):
    """'#' lines are a preamble before the header; after it a '#' row is data and is
    never dropped silently."""
    a, b = hexhash(), hexhash()
    path = write(tmp_path, "c.csv", f"# exported 2024-05-01\n  \nentry_id,hash\n#7,{a}\n   \n# note,x\n8,{b}\n")
    fails("line 6: wrong length", path, algorithm="pdq")
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert list(zip(parsed.entry_ids, parsed.hashes, parsed.lines.tolist())) == [("#7", a, 4), ("8", b, 7)]
    assert [r.line for r in parsed.rejected] == [6]
    quoted = write(tmp_path, "q.csv", f'# "quoted" preamble\nhash\n"{a}"\n  \n# x\n')
    assert [r.line for r in read_list(quoted, algorithm="pdq", skip_invalid=True).rejected] == [5]


def test_tsv(tmp_path, chunked):
    a, b = hexhash(), hexhash()
    path = write(tmp_path, "list.tsv", f"signal_str\tcategory\n{a}\tterrorism\n{b}\tterrorism\n")
    assert detect_format(path) == "tsv"
    parsed = read_list(path, algorithm="pdq")
    assert parsed.hashes == [a, b] and parsed.categories == ["terrorism"] * 2


def test_jsonl(tmp_path, chunked):
    a, b, c = hexhash(), hexhash("sha256"), hexhash("phash")
    lines = [
        {"hash": a, "algorithm": "pdq", "category": "csam", "id": 17, "tags": ["x", "y"]},
        {"Indicator": b, "Type": "SHA256", "date_added": "2023-05-06", "tags": "a;b"},
        {"hash_digest": c, "algorithm": "phash", "deleted": True, "id": "gone"},
    ]
    path = write(tmp_path, "list.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert detect_format(path) == "jsonl"
    parsed = read_list(path)
    assert list(parsed) == [
        ("pdq", a, "csam", "17", None, ("x", "y"), 1),
        ("sha256", b, None, None, "2023-05-06", ("a", "b"), 2),
    ]
    assert parsed.retracted == [Retracted(3, "phash", c, "gone", "deleted")]


def test_tx_csv_export(tmp_path, chunked):
    p1, p2, m1, m2 = hexhash(), hexhash(), hexhash("md5"), hexhash("md5")
    path = write(tmp_path, "tx.csv",
                 "collab,signal_type,signal_str,category,tags\n"
                 f"Sample A,pdq,{p1},POSITIVE_CLASS,t1 t2\n"
                 f"Sample B,pdq,{p1},INVESTIGATION_SEED,\n"  # the same signal in a second collab
                 f"Sample A,photo_md5,{m1},POSITIVE_CLASS,\n"
                 f"Sample A,md5,{m2},NEGATIVE_CLASS,\n"
                 f"Sample B,pdq,{p2},POSITIVE_CLASS,\n")
    assert detect_format(path) == "tx-csv"
    parsed = read_list(path, category="csam")
    assert list(parsed) == [
        ("pdq", p1, "csam", None, None, ("t1", "t2", "collab:Sample A", "investigation_seed", "collab:Sample B"), 2),
        ("md5", m1, "csam", None, None, ("collab:Sample A",), 4),
        ("pdq", p2, "csam", None, None, ("collab:Sample B",), 6),
    ]
    assert parsed.retracted == [Retracted(5, "md5", m2, None, "negative_class")]
    assert parsed.merged == 1  # Sample B's row for p1


def test_tx_csv_column_order_and_unsupported_types(tmp_path):
    v, s = hexhash("md5"), hexhash("sha256")
    path = write(tmp_path, "tx.csv", f"signal_type,signal_str,collab,category,tags\nvideo_md5,{v},c,POSITIVE_CLASS,\n"
                                     f"VIDEO_SHA256,{s},c,POSITIVE_CLASS,x\n")
    assert detect_format(path) == "tx-csv"
    # video_md5 / video_sha256 are digests of the file's bytes: hashmatch's md5 / sha256,
    # tagged with the signal type they came as
    assert list(read_list(path)) == [
        ("md5", v, None, None, None, ("signal_type:video_md5", "collab:c"), 2),
        ("sha256", s, None, None, None, ("x", "signal_type:video_sha256", "collab:c"), 3),
    ]
    path = write(tmp_path, "tx2.csv", f"signal_type,signal_str,collab,category,tags\nurl,http://x,c,POSITIVE_CLASS,\n"
                                      f"pdq,{hexhash()},c,POSITIVE_CLASS,\n")
    fails(r"line 2: unknown algorithm 'url'", path)
    parsed = read_list(path, skip_invalid=True)
    assert len(parsed) == 1 and parsed.rejected[0].line == 2
    path = write(tmp_path, "tx3.csv", f"signal_type,signal_str,collab,category,tags\npdq,{hexhash()},c,MAYBE,\n")
    err = fails("line 2: unknown threatexchange opinion category 'MAYBE'", path)
    assert "POSITIVE_CLASS, INVESTIGATION_SEED, DISPUTED or NEGATIVE_CLASS" in err.reason


def tat_entries():
    return [
        {"id": 2819, "hash_digest": hexhash("md5"), "algorithm": "MD5", "ideology": "islamist", "file_type": "mp4",
         "deleted": False, "updated_on": 1704901040.2, "created_on": "2025-03-03 23:05:22,587"},
        {"id": 2820, "hash_digest": hexhash().upper(), "algorithm": "PDQ", "ideology": "far-right",
         "file_type": "gif", "deleted": False, "created_on": "2025-03-04T01:00:00Z"},
        {"id": 2821, "hash_digest": hexhash("sha256"), "algorithm": "SHA256", "ideology": "islamist",
         "file_type": "jpg", "deleted": True},
        {"id": 2822, "hash_digest": hexhash("sha1"), "algorithm": "SHA1", "ideology": "islamist",
         "file_type": "png", "deleted": False},
    ]


@pytest.mark.parametrize("wrapped", [False, True], ids=["list", "object"])
@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "pretty"])
def test_tat_json(tmp_path, wrapped, indent):
    items = tat_entries()
    doc = {"count": 4, "next": None, "checkpoint": "1724856487.7,10594", "results": items} if wrapped else items
    path = write(tmp_path, "tat.json", json.dumps(doc, indent=indent))
    assert detect_format(path) == "tat-json"
    parsed = read_list(path)
    assert entries(parsed) == [
        ("md5", items[0]["hash_digest"], "islamist", "2819", "2025-03-03 23:05:22,587", ("file_type:mp4",)),
        ("pdq", items[1]["hash_digest"].lower(), "far-right", "2820", "2025-03-04T01:00:00Z", ("file_type:gif",)),
        ("sha1", items[3]["hash_digest"], "islamist", "2822", None, ("file_type:png",)),
    ]
    assert [(r.algorithm, r.hash, r.entry_id, r.reason) for r in parsed.retracted] == [
        ("sha256", items[2]["hash_digest"], "2821", "deleted")]
    if indent is None:
        assert set(parsed.lines.tolist()) == {1}
    else:  # each entry's line is the line of its opening brace
        text = open(path).read().splitlines()
        for line in parsed.lines.tolist():
            assert text[line - 1].strip() == "{"


def test_tat_json_bad_entries_are_named(tmp_path):
    items = tat_entries()
    items.append({"id": 9, "hash_digest": "abc", "algorithm": "TMK", "deleted": False})
    items.append({"id": 10, "hash_digest": hexhash()[:-2], "algorithm": "PDQ", "deleted": False})
    path = write(tmp_path, "tat.json", json.dumps(items))
    fails(r"line 1: entry 5: unknown algorithm 'TMK'", path)
    parsed = read_list(path, skip_invalid=True)
    assert len(parsed) == 3
    assert [r.reason for r in parsed.rejected] == [
        # every signal type installed is named: the built-in ones, then any plug-in's
        f"entry 5: unknown algorithm 'TMK' (supported: {', '.join(signals.names())})",
        "entry 6: wrong length: pdq hashes have 64 hex digits, this one has 62",
    ]
    assert json.loads(parsed.rejected[0].text)["id"] == 9


def test_tat_json_listed_and_retracted_is_a_conflict(tmp_path):
    h = hexhash()
    items = [{"id": 1, "hash_digest": h, "algorithm": "PDQ", "deleted": False},
             {"id": 2, "hash_digest": h, "algorithm": "PDQ", "deleted": True}]
    path = write(tmp_path, "tat.json", json.dumps(items, indent=1))
    err = fails("retracted .deleted. here but listed at line 2", path)
    assert err.line == 8  # "[", " {", 4 fields, " },", " {"
    parsed = read_list(path, skip_invalid=True)
    assert parsed.hashes == [h] and parsed.retracted == [] and parsed.rejected[0].line == 8


@pytest.mark.parametrize("doc, match", [
    ('[{"hash_digest": "ab", ', "malformed JSON"),
    ('{"results": [1, 2], "x": }', "malformed JSON"),
    ('[] []', "extra data"),
    ('{"meta": {"a": 1}}', "no list of entries"),
    ("[]", "no entries"),
])
def test_tat_json_malformed(tmp_path, doc, match):
    fails(match, write(tmp_path, "tat.json", doc), format="tat-json", skip_invalid=True)


def test_tat_json_document_cap(tmp_path):
    path = write(tmp_path, "tat.json", json.dumps(tat_entries()))
    fails("larger than 100 bytes", path, max_document_bytes=100)


# ------------------------------------------------------------------------------ detection


@pytest.mark.parametrize("content, name, expected", [
    ("pdq " + "ab" * 32 + "\n", "list.csv", "text"),  # content beats the extension
    ("# c\n\n" + "ab" * 32 + "\n", "list.dat", "text"),
    ("hash,category\n" + "ab" * 32 + ",x\n", "list.txt", "csv"),
    ("hash\n" + "ab" * 32 + "\n", "list", "csv"),
    ("hash\n" + "ab" * 32 + "\n", "list.tsv", "tsv"),
    ("Hash\tLabel\n" + "ab" * 32 + "\tx\n", "list.txt", "tsv"),
    ('{"hash": "' + "ab" * 32 + '"}\n', "list.json", "jsonl"),
    ('[{"hash_digest": "' + "ab" * 32 + '"}]', "list.jsonl", "tat-json"),
    ('{\n  "results": []\n}', "list.txt", "tat-json"),
    ('{"count": 0, "results": []}', "list", "tat-json"),
    ("collab,signal_type,signal_str,category,tags\n", "x.csv", "tx-csv"),
    ("\ufeffhash,category\n", "bom.csv", "csv"),
    ("what is this?\n", "list.csv", "csv"),  # content unclear: the extension decides
])
def test_detect_format(tmp_path, content, name, expected):
    assert detect_format(write(tmp_path, name, content)) == expected


def test_detect_format_failures(tmp_path):
    with pytest.raises(ListFormatError, match="cannot tell the list format"):
        detect_format(write(tmp_path, "mystery", "what is this?\n"))
    with pytest.raises(ListFormatError, match="empty"):
        detect_format(write(tmp_path, "empty.txt", "  \n\n"))
    with pytest.raises(ListFormatError, match="NUL byte"):
        detect_format(write(tmp_path, "bin.txt", b"pdq ab\n\x00\x01\x02"))
    with pytest.raises(ListFormatError, match="UTF-16"):
        detect_format(write(tmp_path, "u16.txt", "hash\n".encode("utf-16")))


def test_format_can_be_forced(tmp_path):
    h = hexhash()
    path = write(tmp_path, "list.dat", f"hash\n{h}\n")
    assert read_list(path, format="text", algorithm="pdq", skip_invalid=True).rejected[0].line == 1
    assert read_list(path, format="CSV", algorithm="pdq").hashes == [h]
    with pytest.raises(ConfigurationError, match="unknown list format"):
        read_list(path, format="xml")
    with pytest.raises(ConfigurationError, match="unknown algorithm"):
        read_list(path, format="csv", algorithm="crc32")


# ------------------------------------------------------------------------------ hashes


def test_mixed_case_hex_is_normalised(tmp_path):
    h = hexhash()
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(h))
    path = write(tmp_path, "case.csv", f"hash,algorithm\n{mixed},Pdq\n{hexhash('md5').upper()},MD5\n")
    parsed = read_list(path)
    assert parsed.hashes[0] == h
    assert all(x == x.lower() for x in parsed.hashes)


@pytest.mark.parametrize("variant", ["padded", "unpadded", "urlsafe"])
def test_pdq_base64(tmp_path, variant):
    raw = bytes(RNG.randrange(256) for _ in range(32))
    raw = raw[:1] + b"\xfb\xff" + raw[3:]  # make the standard and url-safe alphabets differ
    text = base64.b64encode(raw).decode()
    if variant == "unpadded":
        text = text.rstrip("=")
    elif variant == "urlsafe":
        text = base64.urlsafe_b64encode(raw).decode()
    path = write(tmp_path, "b64.csv", f"hash,algorithm\n{text},pdq\n")
    assert read_list(path).hashes == [raw.hex()]


def test_base64_only_for_pdq(tmp_path):
    text = base64.b64encode(bytes(16)).decode()  # 24 characters
    path = write(tmp_path, "b64.csv", f"hash,algorithm\n{text},md5\n")
    fails("line 2: wrong length: md5 hashes have 32 hex digits", path)


def test_digests(tmp_path):
    a, b, m = hexhash(), hexhash(), hexhash("md5")
    parsed = read_list(write(tmp_path, "l.txt", f"pdq {a}\nmd5 {m}\npdq {b}\n"))
    idx, digests = parsed.digests("pdq")
    assert idx.tolist() == [0, 2]
    assert digests.shape == (2, 32) and digests.dtype == np.uint8
    assert digests[1].tobytes().hex() == b
    assert parsed.counts() == {"pdq": 2, "md5": 1}


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("line, reason", [
    ("pdq " + "ab" * 31 + "a", "wrong length: pdq hashes have 64 hex digits, this one has 63"),
    ("pdq " + "ab" * 33, "wrong length: pdq hashes have 64 hex digits, this one has 66"),
    ("md5 " + "ab" * 15 + "zz", "non-hex character 'z' at position 31 of the md5 hash"),
    ("pdq " + "ab" * 31 + "é1", "non-hex character 'é' at position 63 of the pdq hash"),
    ("crc32 abcdef01", "unknown algorithm 'crc32'"),
    ("pdq a b c", "expected 'algorithm hash' or a bare hash, found 4 fields"),
])
def test_bad_text_line(tmp_path, chunked, line, reason):
    good = [f"pdq {hexhash()}" for _ in range(3)]
    path = write(tmp_path, "bad.txt", "\n".join(good[:2] + [line] + good[2:]) + "\n")
    err = fails(f"line 3: {reason}", path)
    assert (err.line, err.reason[:len(reason)]) == (3, reason)
    assert str(err).startswith(f"{path}, line 3: ")
    parsed = read_list(path, skip_invalid=True)
    assert len(parsed) == 3 and parsed.lines.tolist() == [1, 2, 4]
    assert parsed.rejected == [Rejected(3, parsed.rejected[0].reason, line)]


@pytest.mark.parametrize("row, reason", [
    ("{h},csam,extra", "expected 2 fields, found 3"),
    ("{h}", "expected 2 fields, found 1"),
    ('"{h}"x,csam', "malformed CSV: ',' expected after '\"'"),
])
def test_bad_csv_row(tmp_path, chunked, row, reason):
    path = write(tmp_path, "bad.csv", f"hash,category\n{hexhash()},a\n{row.format(h=hexhash())}\n{hexhash()},b\n")
    err = fails("line 3: " + reason.replace("(", r"\("), path, algorithm="pdq")
    assert err.line == 3
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert parsed.lines.tolist() == [2, 4] and [r.line for r in parsed.rejected] == [3]


def test_csv_without_hash_column(tmp_path):
    path = write(tmp_path, "nohash.csv", "md5sum,category\nab,x\n")
    err = fails("no hash column in the header", path, format="csv", skip_invalid=True)
    assert err.line == 1


def test_bad_date(tmp_path):
    path = write(tmp_path, "dates.csv", f"hash,date\n{hexhash()},2024-02-30\n{hexhash()},2024-02-03\n")
    fails("line 2: invalid date '2024-02-30'", path, algorithm="pdq")
    assert read_list(path, algorithm="pdq", skip_invalid=True).dates == ["2024-02-03"]


def test_malformed_jsonl(tmp_path, chunked):
    good = json.dumps({"hash": hexhash(), "algorithm": "pdq"})
    path = write(tmp_path, "bad.jsonl", "\n".join([good, '{"hash": "ab",', "[1, 2]", '{"value": 5}',
                                                   json.dumps({"hash": hexhash(), "algorithm": "pdq"})]) + "\n")
    fails("line 2: malformed JSON", path)
    parsed = read_list(path, skip_invalid=True)
    assert parsed.lines.tolist() == [1, 5]
    assert [(r.line, r.reason.split(":")[0]) for r in parsed.rejected] == [
        (2, "malformed JSON"), (3, "expected a JSON object, found an array"),
        (4, "'value' must be a string, found a number")]


def test_repeated_lines_are_merged_or_kept(tmp_path, chunked):
    """A repeated hash is never an error: an identical line is merged into the first
    (and counted), a line with other metadata is an entry of its own."""
    a, b = hexhash(), hexhash()
    rows = [f"pdq {a}", f"pdq {b}", f"md5 {a[:32]}", f"pdq {a.upper()}", f"pdq {b}", f"md5 {a[:32]}"]
    path = write(tmp_path, "dups.txt", "\n".join(rows) + "\n")
    for skip_invalid in (False, True):
        parsed = read_list(path, skip_invalid=skip_invalid)
        assert list(zip(parsed.algorithms, parsed.hashes, parsed.lines.tolist())) == [
            ("pdq", a, 1), ("pdq", b, 2), ("md5", a[:32], 3)]
        assert parsed.merged == 3 and parsed.rejected == []
    # the same hashes with different ids: every line is an entry
    csv_rows = [f"{alg},{h},id-{i}" for i, (alg, h) in enumerate(r.split() for r in rows)]
    path = write(tmp_path, "dups.csv", "algorithm,hash,id\n" + "\n".join(csv_rows) + "\n")
    for skip_invalid in (False, True):
        parsed = read_list(path, skip_invalid=skip_invalid)
        assert len(parsed) == 6 and parsed.merged == 0 and parsed.rejected == []
        assert parsed.lines.tolist() == [2, 3, 4, 5, 6, 7]
        assert parsed.entry_ids == [f"id-{i}" for i in range(6)]
        assert parsed.hashes == [a, b, a[:32], a, b, a[:32]]


def test_same_prefix_is_not_a_duplicate(tmp_path):
    a = hexhash()
    b = a[:16] + hexhash()[16:]  # equal first 8 bytes, different hash
    assert read_list(write(tmp_path, "l.txt", f"pdq {a}\npdq {b}\n")).hashes == [a, b]


def test_same_hash_under_two_algorithms_is_not_a_duplicate(tmp_path):
    h = hexhash("sha256")
    assert len(read_list(write(tmp_path, "l.txt", f"pdq {h}\nsha256 {h}\n"))) == 2


@pytest.mark.parametrize("content", ["", "\n\n   \n", "# only a comment\n"])
def test_empty_list(tmp_path, content):
    path = write(tmp_path, "empty.txt", content)
    fails("no entries", path, format="text", algorithm="pdq")


def test_header_only_csv(tmp_path):
    fails("no entries", write(tmp_path, "header.csv", "hash,category\n"), algorithm="pdq")


def test_nothing_valid_left(tmp_path):
    path = write(tmp_path, "allbad.txt", "pdq 12\npdq 34\n")
    err = fails("no valid entries: all 2 were rejected", path, skip_invalid=True)
    assert [r.line for r in err.rejected] == [1, 2]  # for the report


def test_too_many_rejections(tmp_path):
    path = write(tmp_path, "wrong.txt", "".join(f"md5 {hexhash()}\n" for _ in range(20)))
    err = fails("more than 5 entries rejected", path, skip_invalid=True, max_rejected=5)
    assert len(err.rejected) == 6


@pytest.mark.parametrize("content, line, reason", [
    (b"pdq " + b"ab" * 32 + b"\n\x00\x00\x00", 2, "binary file: NUL byte"),
    (b"pdq " + b"ab" * 32 + b"\npdq \xff\xfe\n", 2, "not UTF-8 text"),
    # a PNG: its first line is not UTF-8, its third holds NULs; which is seen first
    # depends on the chunk size, and both say "binary file"
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, "binary file"),
])
def test_binary_file(tmp_path, chunked, content, line, reason):
    path = write(tmp_path, "bin.txt", content)
    err = fails(reason, path, format="text", skip_invalid=True)
    assert err.line == line or line is None
    with pytest.raises(ListFormatError, match="binary file"):
        read_list(path)  # detection refuses it up front


def test_binary_deep_in_a_file(tmp_path, chunked):
    good = "".join(f"pdq {hexhash()}\n" for _ in range(20))
    path = write(tmp_path, "late.txt", good.encode() + b"pdq \xc3\x28\n" + good.encode())
    assert fails("not UTF-8", path, skip_invalid=True).line == 21


def test_utf8_bom_and_crlf(tmp_path, chunked):
    a, b = hexhash(), hexhash()
    path = write(tmp_path, "bom.csv", "\ufeffhash,category\r\n" + f"{a},x\r\n{b},y\r\n")
    parsed = read_list(path, algorithm="pdq")
    assert parsed.hashes == [a, b] and parsed.categories == ["x", "y"]


def test_multibyte_characters_across_chunks(tmp_path, chunked):
    rows = [f"{hexhash()},catégorie-{i}-日本" for i in range(10)]
    path = write(tmp_path, "utf8.csv", "hash,category\n" + "\n".join(rows) + "\n")
    assert read_list(path, algorithm="pdq").categories == [f"catégorie-{i}-日本" for i in range(10)]


def test_overlong_line_is_rejected_without_reading_it_whole(tmp_path, monkeypatch):
    """Stands in for a 2 GB line: the cap is lowered to 1 KiB and the chunk to 4 KiB; a
    4 MiB line must be skipped while holding only a few chunks."""
    monkeypatch.setattr(lists, "CHUNK_BYTES", 4096)
    a, b = hexhash(), hexhash()
    path = tmp_path / "long.txt"
    with open(path, "w") as handle:
        handle.write(f"pdq {a}\npdq ")
        for _ in range(1024):
            handle.write("f" * 4096)
        handle.write(f"\npdq {b}\n")
    tracemalloc.start()
    try:
        parsed = read_list(path, skip_invalid=True, max_line_bytes=1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"peak {peak} bytes: the long line was held in memory"
    assert parsed.hashes == [a, b] and parsed.lines.tolist() == [1, 3]
    [rejected] = parsed.rejected
    assert rejected.line == 2 and rejected.reason == "line longer than 1024 bytes"
    assert rejected.text == ("pdq " + "f" * 196)  # truncated to 200 characters
    err = fails("line 2: line longer than 1024 bytes", str(path), max_line_bytes=1024)
    assert err.line == 2


@pytest.mark.parametrize("chunk", [1, 5, 1023, 1025, 1 << 20])
def test_overlong_lines_any_chunking(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(lists, "CHUNK_BYTES", chunk)
    a, b = hexhash(), hexhash()
    path = write(tmp_path, "long.txt", f"pdq {a}\n{'x' * 3000}\npdq {b}\n{'y' * 2000}")  # the last has no newline
    parsed = read_list(path, skip_invalid=True, max_line_bytes=1024)
    assert parsed.hashes == [a, b] and parsed.lines.tolist() == [1, 3]
    assert [r.line for r in parsed.rejected] == [2, 4]


def test_unterminated_quote(tmp_path, chunked):
    """A quote still open at the end of the file: the line that opened it is the bad
    one; the lines after it are read as written."""
    a, b = hexhash(), hexhash()
    path = write(tmp_path, "quote.csv", f'hash,category\n{a},"never closed\n{b},x\n')
    err = fails("line 2: malformed CSV: unterminated quoted field: the quote opened at line 2 is still open "
                "at the end of the file \\(line 3\\)", path, algorithm="pdq")
    assert err.line == 2
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert list(zip(parsed.hashes, parsed.categories, parsed.lines.tolist())) == [(b, "x", 3)]
    assert [r.line for r in parsed.rejected] == [2]
    assert "the lines after it are read on their own" in parsed.rejected[0].reason


def test_quoted_field_over_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(lists, "CHUNK_BYTES", 64)
    body = "\n".join(f"{hexhash()},x" for _ in range(40))
    path = write(tmp_path, "quote.csv", f'hash,category\n{hexhash()},"open\n{body}\n')
    # 512 bytes from the start of line 2 (72 bytes, then 67 a line) end in line 9
    fails("line 2: malformed CSV: a quoted field opened at line 2 runs over 512 bytes, to line 9 "
          "\\(unterminated quote\\?\\)", path, algorithm="pdq", max_line_bytes=512)
    parsed = read_list(path, algorithm="pdq", max_line_bytes=512, skip_invalid=True)
    assert len(parsed) == 40 and parsed.lines.tolist() == list(range(3, 43))


def audit_csv(tmp_path, n: int = 200_000, delimiter: str = ",", name: str = "audit.csv") -> tuple[str, list[str]]:
    """The audit's case: an unterminated quote on line 2, then `n` valid lines."""
    rng = np.random.default_rng(7)
    good = [row.tobytes().hex() for row in rng.integers(0, 256, (n, 32), dtype=np.uint8)]
    d = delimiter
    body = "".join(f"{h}{d}terrorism{d}id-{i}\n" for i, h in enumerate(good))
    path = write(tmp_path, name, f"hash{d}category{d}id\n{'ab' * 32}{d}\"never closed{d}x\n" + body)
    return path, good


@pytest.mark.parametrize("chunk", [None, 4099, 65_600], ids=["chunk-default", "chunk-4099", "chunk-65600"])
def test_unterminated_quote_before_200000_valid_lines(tmp_path, monkeypatch, chunk):
    """Audit finding: line 2 opens a quote that is never closed, 200,000 valid lines
    follow. The csv module alone swallowed 1,847 of them into one field and reported
    only line 2. Now: skip_invalid imports every valid line and rejects line 2 alone,
    naming the lines the field ran over; all-or-nothing fails naming the same range,
    whatever the chunk size."""
    if chunk is not None:
        monkeypatch.setattr(lists, "CHUNK_BYTES", chunk)
    path, good = audit_csv(tmp_path)
    reason = "malformed CSV: a quoted field opened at line 2 runs over 65536 bytes, to line 802 (unterminated quote?)"
    with pytest.raises(ListFormatError) as info:
        read_list(path, algorithm="pdq")
    assert (info.value.line, info.value.reason) == (2, reason)
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert len(parsed) == 200_000 and parsed.hashes == good
    assert parsed.lines.tolist() == list(range(3, 200_003))
    assert parsed.entry_ids[:2] == ["id-0", "id-1"] and set(parsed.categories) == {"terrorism"}
    assert parsed.rejected == [Rejected(2, reason + "; the lines after it are read on their own",
                                        f'{"ab" * 32},"never closed,x')]


def test_unterminated_quote_before_valid_lines_tiny_chunks(tmp_path, chunked):
    """The audit's case scaled down (3,000 lines, a 4 KiB cap) at every chunk size of
    the fixture, 7-byte chunks included: same entries, same reason."""
    path, good = audit_csv(tmp_path, n=3000)
    reason = "malformed CSV: a quoted field opened at line 2 runs over 4096 bytes, to line 52 (unterminated quote?)"
    with pytest.raises(ListFormatError) as info:
        read_list(path, algorithm="pdq", max_line_bytes=4096)
    assert (info.value.line, info.value.reason) == (2, reason)
    parsed = read_list(path, algorithm="pdq", max_line_bytes=4096, skip_invalid=True)
    assert parsed.hashes == good and parsed.lines.tolist() == list(range(3, 3003))
    assert [(r.line, r.reason) for r in parsed.rejected] == [(2, reason + "; the lines after it are read on their own")]


@pytest.mark.parametrize("fmt", ["tsv", "tx-csv"])
def test_unterminated_quote_tsv_and_tx_csv(tmp_path, chunked, fmt):
    a, b, c = hexhash(), hexhash(), hexhash()
    if fmt == "tsv":
        content = f'hash\tcategory\n{a}\t"oops\n{b}\tx\n{c}\ty\n'
    else:
        content = (f'collab,signal_type,signal_str,category,tags\nc1,pdq,{a},"POSITIVE_CLASS\n'
                   f"c1,pdq,{b},POSITIVE_CLASS,t\nc1,pdq,{c},POSITIVE_CLASS,t\n")
    path = write(tmp_path, f"q.{fmt}", content)
    fails("line 2: malformed CSV: unterminated quoted field: the quote opened at line 2", path, format=fmt,
          algorithm="pdq")
    parsed = read_list(path, format=fmt, algorithm="pdq", skip_invalid=True)
    assert parsed.hashes == [b, c] and parsed.lines.tolist() == [3, 4]
    assert [r.line for r in parsed.rejected] == [2]


def test_unterminated_quote_closed_by_a_later_quoted_field(tmp_path, chunked):
    """The stray quote is closed by the next quoted field (line 6), where the csv module
    stops: lines 3 to 6 are read again, each on its own."""
    hs = [hexhash() for _ in range(5)]
    path = write(tmp_path, "q.csv", f'hash,category\n{hs[0]},"oops\n{hs[1]},a\n{hs[2]},b\n{hs[3]},c\n'
                                    f'{hs[4]},"d, e"\n')
    fails("line 2: malformed CSV: a quoted field opened at line 2 runs to line 6, where: ',' expected after "
          "'\"' \\(unterminated quote\\?\\)", path, algorithm="pdq")
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert list(zip(parsed.hashes, parsed.categories)) == list(zip(hs[1:], ["a", "b", "c", "d, e"]))
    assert parsed.lines.tolist() == [3, 4, 5, 6] and [r.line for r in parsed.rejected] == [2]


def test_unterminated_quote_closed_cleanly_over_rows(tmp_path, chunked):
    """The field closes without a CSV error (line 4 ends in a quote), but line 3, inside
    it, reads as a row of its own: the quote is taken as unterminated."""
    a, b, c = hexhash(), hexhash(), hexhash()
    path = write(tmp_path, "q.csv", f'hash,category\n{a},"oops\n{b},x\n{c},y"\n')
    fails("line 2: .*opened at line 2 runs to line 4, over line 3, which reads as a row of its own", path,
          algorithm="pdq")
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert list(zip(parsed.hashes, parsed.categories, parsed.lines.tolist())) == [(b, "x", 3), (c, 'y"', 4)]
    assert [r.line for r in parsed.rejected] == [2]


def test_multi_line_fields_that_are_not_rows_stay_one_record(tmp_path, chunked):
    """RFC 4180 newlines inside quotes: tags, a category or a notes column spread over
    lines, even lines that look like part of a row, are one record."""
    a, b, c = hexhash(), hexhash(), hexhash()
    content = ("hash,category,tags,notes\n"
               f'{a},"csam\nsecond line",t1,"a note\n{b}\nwith a hash alone on a line"\n'  # 1 field, not 4
               f'{b},ncii,"x;\ny\n;z","two, fields\n{c},extra"\n'  # 2 fields on the hash line, not 4
               f"{c},,,\n")
    path = write(tmp_path, "multi.csv", content)
    parsed = read_list(path, algorithm="pdq")
    assert list(parsed) == [
        ("pdq", a, "csam\nsecond line", None, None, ("t1",), 2),
        ("pdq", b, "ncii", None, None, ("x", "y", "z"), 6),
        ("pdq", c, None, None, None, (), 10),
    ]


def test_many_stray_quotes(tmp_path):
    """Every other line opens a quote the next such line closes: each bad line is
    rejected on its own, each good line imported, in linear time."""
    good = [hexhash() for _ in range(20_000)]
    lines = ["hash,category"]
    for h in good:
        lines += [f'{"cd" * 32},"stray', f"{h},ok"]
    path = write(tmp_path, "stray.csv", "\n".join(lines) + "\n")
    parsed = read_list(path, algorithm="pdq", skip_invalid=True)
    assert parsed.hashes == good and parsed.lines.tolist() == list(range(3, 40_002, 2))
    assert [r.line for r in parsed.rejected] == list(range(2, 40_002, 2))
    fails("line 2: malformed CSV: a quoted field opened at line 2 runs to line 4", path, algorithm="pdq")


def test_unterminated_quote_in_the_header(tmp_path, chunked):
    path = write(tmp_path, "h.csv", f'"hash,category\n{hexhash()},x\n')
    fails("line 1: malformed CSV header", path, format="csv", algorithm="pdq", skip_invalid=True)


def test_not_a_regular_file(tmp_path):
    fails("not a regular file", str(tmp_path))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fails("not a regular file", str(fifo), format="text")  # must not block
    fails("cannot open", str(tmp_path / "missing.txt"), format="text")


def test_errors_are_hashmatch_errors(tmp_path):
    with pytest.raises(HashmatchError):
        read_list(write(tmp_path, "e.txt", ""))


# ------------------------------------------------------------------------------ reports


def test_reject_report(tmp_path):
    long_text = "pdq " + "z" * 500
    path = write(tmp_path, "mixed.txt", f"pdq {hexhash()}\npdq 1234\n{long_text}\npdq {hexhash()}\n")
    parsed = read_list(path, skip_invalid=True)
    assert len(parsed) == 2
    report = tmp_path / "rejects.csv"
    assert write_rejects(parsed.rejected, report) == 2
    assert stat.S_IMODE(os.stat(report).st_mode) == 0o600
    with open(report, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "reason", "text"]
    assert rows[1] == ["2", "wrong length: pdq hashes have 64 hex digits, this one has 4", "pdq 1234"]
    assert rows[2][0] == "3" and rows[2][1].startswith("wrong length") and rows[2][2] == long_text[:200]


# ------------------------------------------------------------------------------ writing


def sample_columns(n: int = 40) -> dict:
    algorithms = [RNG.choice(["pdq", "md5", "sha256", "phash"]) for _ in range(n)]
    return {
        "algorithms": algorithms,
        "hashes": [hexhash(a) for a in algorithms],
        "categories": [RNG.choice(["csam", "terrorism", "ncii", None, "a, \"quoted\"\nvalue"]) for _ in range(n)],
        "entry_ids": [RNG.choice([None, f"id-{i}", f"#{i}"]) for i in range(n)],
        "dates": [RNG.choice([None, "2024-01-31", "2024-01-31T12:00:00+02:00"]) for _ in range(n)],
        "tags": [tuple(RNG.sample(["alpha", "beta", "gamma", "dé jà"], RNG.randrange(3))) for _ in range(n)],
    }


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip(tmp_path, chunked, fmt):
    columns = sample_columns()
    path = tmp_path / f"export.{fmt}"
    assert write_list(path, format=fmt, **columns) == 40
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert detect_format(path) == fmt
    parsed = read_list(path)
    assert parsed.format == fmt
    assert parsed.columns() == columns
    # and again, from the parsed list itself
    again = tmp_path / f"again.{fmt}"
    parsed.write(again, format=fmt)
    assert read_list(again).columns() == columns


def test_round_trip_text(tmp_path, chunked):
    columns = sample_columns()
    path = tmp_path / "export.txt"
    write_list(path, hashes=columns["hashes"], algorithms=columns["algorithms"], format="text")
    assert detect_format(path) == "text"
    parsed = read_list(path)
    assert parsed.algorithms == columns["algorithms"] and parsed.hashes == columns["hashes"]
    first = open(path).readline().split()
    assert first == [columns["algorithms"][0], columns["hashes"][0]]


def test_round_trip_of_a_parsed_tat_list(tmp_path):
    parsed = read_list(write(tmp_path, "tat.json", json.dumps(tat_entries())))
    parsed.write(tmp_path / "out.csv")
    assert entries(read_list(tmp_path / "out.csv")) == entries(parsed)


def test_write_normalises_and_validates(tmp_path):
    h = hexhash()
    path = tmp_path / "out.txt"
    write_list(path, hashes=[h.upper()], algorithms="PDQ", format="text")
    assert open(path).read() == f"pdq {h}\n"
    with pytest.raises(ConfigurationError, match="wrong length"):
        write_list(path, hashes=["abc"], algorithms="pdq")
    with pytest.raises(ConfigurationError, match="unknown algorithm"):
        write_list(path, hashes=[h], algorithms="crc")
    with pytest.raises(ConfigurationError, match="separators"):
        write_list(path, hashes=[h], algorithms="pdq", tags=[("a;b",)])
    with pytest.raises(ConfigurationError, match="1 values for 2 hashes"):
        write_list(path, hashes=[h, hexhash()], algorithms="pdq", categories=["x"])
    with pytest.raises(ConfigurationError, match="cannot write list format"):
        write_list(path, hashes=[h], algorithms="pdq", format="tat-json")
    with pytest.raises(ConfigurationError, match="invalid date"):
        write_list(path, hashes=[h], algorithms="pdq", dates=["yesterday"])
    assert open(path).read() == f"pdq {h}\n"  # failed writes left the old file alone


def test_larger_list_in_bulk(tmp_path):
    """Many chunks, the bulk paths and the duplicate check at a moderate size."""
    raw = np.random.default_rng(3).integers(0, 256, size=(50_000, 32), dtype=np.uint8)
    hashes = [row.tobytes().hex() for row in raw]
    path = tmp_path / "big.csv"
    with open(path, "w") as handle:
        handle.write("hash,category\n")
        handle.writelines(f"{h},csam\n" for h in hashes)
    parsed = read_list(path, algorithm="pdq")
    assert parsed.hashes == hashes
    assert parsed.lines[-1] == 50_001
    assert parsed.categories[0] is parsed.categories[-1]  # one shared string
    assert parsed.merged == 0
    with open(path, "a") as handle:
        handle.write(f"{hashes[123].upper()},csam\n")  # identical to line 125: merged
        handle.write(f"{hashes[456]},ncii\n")  # the same hash, another category: kept
    parsed = read_list(path, algorithm="pdq")
    assert len(parsed) == 50_001 and parsed.merged == 1 and parsed.rejected == []
    assert parsed.hashes[:50_000] == hashes and parsed.hashes[-1] == hashes[456]
    assert parsed.lines[-2:].tolist() == [50_001, 50_003]
    assert (parsed.categories[456], parsed.categories[-1]) == ("csam", "ncii")


# ------------------------------------------------------------------------------ repeated hashes


def test_one_pdq_twice_with_different_ids_both_kept(tmp_path, chunked):
    """Two sources listing the same picture: two entries, in file order, each with its
    own id and line (dropping either would lose the evidence of the other)."""
    a, b = hexhash(), hexhash()
    path = write(tmp_path, "l.csv", f"hash,algorithm,id,category\n{a},pdq,ncmec-1,csam\n{b},pdq,x,csam\n"
                                    f"{a.upper()},PDQ,gifct-9,csam\n")
    for skip_invalid in (False, True):
        parsed = read_list(path, skip_invalid=skip_invalid)
        assert list(parsed) == [("pdq", a, "csam", "ncmec-1", None, (), 2), ("pdq", b, "csam", "x", None, (), 3),
                                ("pdq", a, "csam", "gifct-9", None, (), 4)]
        assert parsed.merged == 0 and parsed.rejected == []
        idx, digests = parsed.digests("pdq")
        assert idx.tolist() == [0, 1, 2] and digests[0].tobytes() == digests[2].tobytes()


@pytest.mark.parametrize("field, first, second", [
    ("entry_id", "1", "2"), ("category", "csam", "terrorism"), ("date", "2024-01-01", "2024-01-02"),
    ("tags", "a", "a;b"), ("tags", "a;b", "b;a"), ("category", "csam", ""),
])
def test_any_metadata_difference_keeps_both(tmp_path, chunked, field, first, second):
    h = hexhash()
    path = write(tmp_path, "l.csv", f"hash,{field}\n{h},{first}\n{h},{second}\n")
    parsed = read_list(path, algorithm="pdq")
    assert parsed.hashes == [h, h] and parsed.lines.tolist() == [2, 3] and parsed.merged == 0


def test_identical_lines_are_merged_and_counted(tmp_path, chunked):
    h, g, m = hexhash(), hexhash(), hexhash("md5")
    text = f"pdq {h}\n{h}\npdq {g}\nPDQ {h.upper()}\nmd5 {m}\nmd5 {m}\n"
    csv_text = (f"hash,algorithm,id,date,tags,category\n{h},pdq,7,2024-01-01,a;b,csam\n{g},pdq,,,,\n"
                f'{h.upper()},pdq, 7 ,2024-01-01,"a,b",csam\n'  # the same entry: "a,b" is "a;b"
                f"{h},PDQ,7,2024-01-01,a,csam\n"  # other tags: an entry of its own
                f'"{h}",pdq,7,2024-01-01,"a;b",csam\n{m},md5,,,,\n{m},md5,,,,\n')
    jsonl = "\n".join(json.dumps(o) for o in [
        {"hash": h, "algorithm": "pdq", "id": 7, "date": "2024-01-01", "tags": ["a", "b"], "category": "csam"},
        {"hash": g, "algorithm": "pdq"},
        {"hash": h, "algorithm": "pdq", "id": "7", "date": "2024-01-01", "tags": "a;b", "category": "csam"},
        {"hash": h, "algorithm": "pdq", "id": 7, "date": "2024-01-01", "tags": ["a"], "category": "csam"},
        {"hash": h.upper(), "algorithm": "PDQ", "id": 7, "date": "2024-01-01", "tags": ["a", "b"], "category": "csam"},
        {"hash": m, "algorithm": "md5"}, {"hash": m, "algorithm": "md5"}]) + "\n"
    for fmt, content in (("text", text), ("csv", csv_text), ("jsonl", jsonl)):
        path = write(tmp_path, f"l.{fmt}", content)
        for skip_invalid in (False, True):
            parsed = read_list(path, format=fmt, algorithm="pdq", skip_invalid=skip_invalid)
            assert parsed.rejected == [] and parsed.merged == 3, fmt
            if fmt == "text":  # a text line has no metadata: the same hash is the same line
                assert list(zip(parsed.hashes, parsed.lines.tolist())) == [(h, 1), (g, 3), (m, 5)]
            else:  # the 3rd and 5th lines repeat the 1st and the 7th the 6th; the 4th has other tags
                first = 2 if fmt == "csv" else 1
                assert list(zip(parsed.hashes, parsed.lines.tolist())) == [
                    (h, first), (g, first + 1), (h, first + 3), (m, first + 5)], fmt
                assert parsed.tags == [("a", "b"), (), ("a",), ()]
                assert parsed.entry_ids == ["7", None, "7", None]


def test_identical_tat_entries_are_merged(tmp_path):
    h = hexhash()
    items = [{"id": 1, "hash_digest": h, "algorithm": "PDQ", "ideology": "x", "deleted": False},
             {"id": 2, "hash_digest": h, "algorithm": "PDQ", "ideology": "x", "deleted": False},
             {"id": 1, "hash_digest": h.upper(), "algorithm": "pdq", "ideology": "x", "deleted": False}]
    parsed = read_list(write(tmp_path, "tat.json", json.dumps(items, indent=1)))
    assert parsed.entry_ids == ["1", "2"] and parsed.merged == 1 and parsed.rejected == []


def test_many_repeats_read_in_chunks(tmp_path, monkeypatch):
    """200k lines, a quarter of them repeating a hash: the result equals a line-by-line
    reference at every chunk size, and a repeat fails nothing."""
    rng = np.random.default_rng(11)
    distinct = [row.tobytes().hex() for row in rng.integers(0, 256, size=(150_000, 32), dtype=np.uint8)]
    rows, expected, seen = [], [], set()
    for i in range(200_000):
        h = distinct[i] if i < 150_000 else distinct[int(rng.integers(0, 150_000))]
        entry_id = f"id{i % 3}" if i >= 150_000 else "id0"
        category = ("csam", "ncii")[int(rng.integers(0, 2))] if i >= 150_000 else "csam"
        rows.append(f"{h.upper() if i % 7 == 0 else h},pdq,{entry_id},{category}\n")
        key = (h, category, entry_id)
        if key not in seen:
            seen.add(key)
            expected.append(("pdq", h, category, entry_id, None, (), i + 2))
    path = tmp_path / "big.csv"
    with open(path, "w") as handle:
        handle.write("hash,algorithm,id,category\n")
        handle.writelines(rows)
    merged = 200_000 - len(expected)
    assert 5_000 < merged < 20_000 and len(set(distinct)) == 150_000
    for chunk in (None, 1 << 16, 4099):
        if chunk is not None:
            monkeypatch.setattr(lists, "CHUNK_BYTES", chunk)
        parsed = read_list(path)
        assert parsed.merged == merged and parsed.rejected == []
        assert list(parsed) == expected
        if chunk is None:
            assert len(read_list(path, skip_invalid=True)) == len(expected)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip_with_repeated_hashes(tmp_path, fmt):
    h, g = hexhash(), hexhash("md5")
    columns = {"algorithms": ["pdq", "md5", "pdq", "pdq", "md5"], "hashes": [h, g, h, h, g],
               "categories": ["csam", None, "csam", "ncii", None], "entry_ids": ["a", None, "b", "a", "x"],
               "dates": [None, None, None, None, "2024-01-01"], "tags": [(), ("t",), (), (), ("t",)]}
    path = tmp_path / f"export.{fmt}"
    assert write_list(path, format=fmt, **columns) == 5
    parsed = read_list(path)
    assert parsed.columns() == columns and parsed.merged == 0
    again = tmp_path / f"again.{fmt}"
    assert parsed.write(again, format=fmt) == 5
    assert read_list(again).columns() == columns


def test_round_trip_text_with_repeated_hashes(tmp_path):
    """text carries only algorithm and hash: entries that differ only in metadata become
    identical lines there, read back as one entry each (the rest counted as merged)."""
    h, g = hexhash(), hexhash()
    path = tmp_path / "export.txt"
    write_list(path, hashes=[h, g, h], algorithms="pdq", entry_ids=["a", "b", "c"], format="text")
    parsed = read_list(path)
    assert parsed.hashes == [h, g] and parsed.merged == 1


# ------------------------------------------------------------------------------ threatexchange opinions


def tx_csv(path, rows) -> str:
    """A CSV exactly as python-threatexchange's `tx dataset -P --csv` writes it: a
    csv.DictWriter with the default dialect (CRLF, minimal quoting), tags joined by
    spaces."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["collab", "signal_type", "signal_str", "category", "tags"])
        writer.writeheader()
        for collab, signal_type, signal_str, category, tags in rows:
            writer.writerow({"collab": collab, "signal_str": signal_str, "signal_type": signal_type,
                             "category": category, "tags": " ".join(tags)})
    return str(path)


def test_tx_csv_disputed_and_every_opinion(tmp_path, chunked):
    p1, p2, p3, p4, p5, p6 = (hexhash() for _ in range(6))
    v = hexhash("md5")
    path = tx_csv(tmp_path / "tx.csv", [
        ("Sample Data", "pdq", p1, "POSITIVE_CLASS", ["t1", "t2"]),
        ("NCMEC, hashes", "pdq", p1, "DISPUTED", ["t2", "t3"]),  # another collab reported a false positive
        ("Sample Data", "pdq", p2, "DISPUTED", []),
        ("Sample Data", "pdq", p3, "INVESTIGATION_SEED", ["seed"]),
        ("Sample Data", "pdq", p4, "NEGATIVE_CLASS", []),
        ("Other", "pdq", p4, "DISPUTED", []),  # listed by another collab: imported, not retracted
        ("Sample Data", "video_md5", v, "POSITIVE_CLASS", []),
        ("Sample Data", "pdq", p5, "NEGATIVE_CLASS", []),
        ("Other", "pdq", p6, "POSITIVE_CLASS", []),
        ("Sample Data", "pdq", p6, "NEGATIVE_CLASS", []),
    ])
    assert (tmp_path / "tx.csv").read_bytes().count(b"\r\n") == 11
    assert detect_format(path) == "tx-csv"
    for skip_invalid in (False, True):
        parsed = read_list(path, category="csam", skip_invalid=skip_invalid)
        assert list(parsed) == [
            ("pdq", p1, "csam", None, None,
             ("t1", "t2", "collab:Sample Data", "t3", "disputed", "collab:NCMEC, hashes"), 2),
            ("pdq", p2, "csam", None, None, ("disputed", "collab:Sample Data"), 4),
            ("pdq", p3, "csam", None, None, ("seed", "investigation_seed", "collab:Sample Data"), 5),
            ("pdq", p4, "csam", None, None, ("disputed", "collab:Other"), 7),
            ("md5", v, "csam", None, None, ("signal_type:video_md5", "collab:Sample Data"), 8),
            ("pdq", p6, "csam", None, None, ("collab:Other",), 10),
        ]
        assert parsed.retracted == [Retracted(9, "pdq", p5, None, "negative_class")]
        assert parsed.merged == 1 and parsed.rejected == []


def test_tx_csv_photo_md5_and_video_md5_are_one_md5_entry(tmp_path):
    m = hexhash("md5")
    path = tx_csv(tmp_path / "tx.csv", [("A", "photo_md5", m, "POSITIVE_CLASS", []),
                                        ("B", "video_md5", m.upper(), "POSITIVE_CLASS", [])])
    parsed = read_list(path)
    assert list(parsed) == [("md5", m, None, None, None, ("collab:A", "signal_type:video_md5", "collab:B"), 2)]
    assert parsed.merged == 1


def test_repeated_hash_listed_and_retracted(tmp_path):
    """A retraction is by hash: it conflicts with every listing of that hash, and each
    bad line is reported once."""
    h, g = hexhash(), hexhash()
    lines = [{"hash": h, "algorithm": "pdq", "id": "a"}, {"hash": h, "algorithm": "pdq", "id": "b"},
             {"hash": h, "algorithm": "pdq", "deleted": True}, {"hash": g, "algorithm": "pdq"},
             {"hash": h, "algorithm": "pdq", "id": "c"}]
    path = write(tmp_path, "l.jsonl", "\n".join(json.dumps(o) for o in lines) + "\n")
    fails("retracted .deleted. here but listed at line 1", path)
    parsed = read_list(path, skip_invalid=True)
    assert list(zip(parsed.hashes, parsed.entry_ids)) == [(h, "a"), (h, "b"), (g, None)]
    assert parsed.retracted == []
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (3, "retracted (deleted) here but listed at line 1"), (5, "listed here but retracted (deleted) at line 3")]


def test_tx_csv_older_opinion_names(tmp_path):
    """python-threatexchange before 1.0 named its opinions TRUE_POSITIVE,
    WORTH_INVESTIGATING and FALSE_POSITIVE; older exports carry them."""
    p1, p2, p3 = (hexhash() for _ in range(3))
    path = tx_csv(tmp_path / "tx.csv", [("A", "pdq", p1, "TRUE_POSITIVE", []),
                                        ("A", "pdq", p2, "WORTH_INVESTIGATING", []),
                                        ("A", "pdq", p3, "FALSE_POSITIVE", [])])
    parsed = read_list(path)
    assert list(parsed) == [("pdq", p1, None, None, None, ("collab:A",), 2),
                            ("pdq", p2, None, None, None, ("investigation_seed", "collab:A"), 3)]
    assert parsed.retracted == [Retracted(4, "pdq", p3, None, "false_positive")]
