"""Positioned, hardened YAML reading (lab.config.yamlio)."""

from __future__ import annotations

import pickle
from tests.conftest import traced_work

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.config import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, Node, parse_yaml, read_yaml
from lab.config import yamlio
from lab.errors import Diagnostic, LabError

PARSERS = [False, True] if getattr(yaml, "__with_libyaml__", False) else [False]


@pytest.fixture(params=PARSERS, ids=lambda c: "libyaml" if c else "pure")
def parser(request, monkeypatch):
    """Run a test with PyYAML's pure-Python and (when present) libyaml event parsers."""
    monkeypatch.setattr(yamlio, "USE_LIBYAML", request.param)
    return request.param


def errors(text: str, file: str = "f.yaml") -> list[tuple[int, int, str]]:
    with pytest.raises(LabError) as info:
        parse_yaml(text, file)
    for d in info.value.diagnostics:
        assert d.file == file
    return [(d.line, d.col, d.message) for d in info.value.diagnostics]


def only_error(text: str) -> tuple[int, int, str]:
    errs = errors(text)
    assert len(errs) == 1, errs
    return errs[0]


# --- the tree -----------------------------------------------------------------------------


def test_tree_kinds_values_and_positions(parser):
    root = parse_yaml("name: demo\nrules:\n  - a\n  - {x: 1.5, y: null}\n", "p.yaml")
    assert root.kind == "map" and (root.line, root.col) == (1, 1)
    (k1, v1), (k2, v2) = root.value
    assert (k1.value, k1.line, k1.col) == ("name", 1, 1)
    assert (v1.kind, v1.value, v1.line, v1.col, v1.style) == ("scalar", "demo", 1, 7, None)
    assert v2.kind == "seq" and (v2.line, v2.col) == (3, 3) and v2.style == "block"
    item = v2.value[1]
    assert item.kind == "map" and item.style == "flow" and (item.line, item.col) == (4, 5)
    assert item.get("x").value == 1.5 and (item.get("x").line, item.get("x").col) == (4, 9)
    assert item.get("y").value is None and item.get("missing") is None
    assert root.to_python() == {"name": "demo", "rules": ["a", {"x": 1.5, "y": None}]}


def test_mapping_order_is_file_order(parser):
    root = parse_yaml("z: 1\na: 2\nm: 3\n", "f")
    assert [k.value for k, _ in root.value] == ["z", "a", "m"]


def test_scalar_resolution_avoids_yaml11_footguns(parser):
    text = ("a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: False\ng: 1:30\nh: 2024-01-31\n"
            "i: 0x10\nj: 1_000\nk: 2.5\nl: .inf\nm: ~\nn: '12'\no: !!str 12\np: \"true\"\n"
            "q: !!float 3\nr: !!bool yes\n")
    assert parse_yaml(text, "f").to_python() == {
        "a": "yes", "b": "No", "c": "on", "d": "OFF", "e": True, "f": False, "g": "1:30",
        "h": "2024-01-31", "i": 16, "j": 1000, "k": 2.5, "l": float("inf"), "m": None,
        "n": "12", "o": "12", "p": "true", "q": 3.0, "r": True}


def test_styles_and_tags_are_recorded(parser):
    root = parse_yaml("a: 'x'\nb: \"y\"\nc: |\n  z\nd: >\n  w\ne: 1\n", "f")
    styles = {k.value: (v.style, v.tag) for k, v in root.value}
    assert styles == {"a": ("'", yamlio.STR), "b": ('"', yamlio.STR), "c": ("|", yamlio.STR),
                      "d": (">", yamlio.STR), "e": (None, yamlio.INT)}


def test_anchor_and_tag_prefix_do_not_shift_the_value_position(parser):
    root = parse_yaml("k: &a !!str 7\nv: *a\n", "f")
    assert (root.get("k").line, root.get("k").col) == (1, 13)
    assert root.get("v").value == "7"


def test_aliases_and_merge_keys(parser):
    root = parse_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\nlist: &l [1, 2]\nl2: *l\n",
                      "f")
    assert root.to_python() == {"base": {"x": 1, "y": 2}, "d": {"x": 1, "y": 3},
                                "list": [1, 2], "l2": [1, 2]}
    # problems with an aliased collection as a whole are reported at the alias
    assert (root.get("l2").line, root.get("l2").col) == (6, 5)


def test_node_is_immutable_and_picklable(parser):
    root = parse_yaml("a: [1, 'two']\n", "f")
    with pytest.raises(AttributeError):
        root.line = 3  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(root))
    assert again == root and again.get("a").value[1].raw == "'two'"


# --- position_of --------------------------------------------------------------------------


def test_position_of_plain_and_quoted(parser):
    root = parse_yaml("a: spend > 10\nb: 'it''s x'\nc: \"q y\"\n", "f")
    assert root.get("a").position_of(0) == (1, 4)
    assert root.get("a").position_of(8) == (1, 12)  # the '1' of 10
    b = root.get("b")
    assert b.value == "it's x" and b.position_of(0) == (2, 5)
    assert b.position_of(5) == (2, 11)  # 'x' comes after the doubled quote
    assert root.get("c").position_of(2) == (3, 7)


def test_position_of_literal_block(parser):
    text = "rule:\n  when: |\n    first line\n      indented more\n\n    last\n"
    node = parse_yaml(text, "f").get("rule").get("when")
    v = node.value
    assert v == "first line\n  indented more\n\nlast\n"
    assert node.position_of(v.index("first")) == (3, 5)
    assert node.position_of(v.index("indented")) == (4, 7)
    assert node.position_of(v.index("last")) == (6, 5)


def test_position_of_folded_and_multiline_plain(parser):
    root = parse_yaml("a: >\n  spend >\n  10 and x\nb: one\n  two\n", "f")
    a = root.get("a")
    assert a.value == "spend > 10 and x\n"
    assert a.position_of(a.value.index("10")) == (3, 3)
    assert a.position_of(a.value.index("x")) == (3, 10)
    b = root.get("b")
    assert b.value == "one two" and b.position_of(4) == (5, 3)


WORDS = st.lists(st.text(alphabet="abcxyz019+-*/<>=().,", min_size=1, max_size=6),
                 min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(WORDS, min_size=1, max_size=4),
       style=st.sampled_from(["plain", "'", '"', "|", ">"]))
def test_position_of_points_at_the_same_character(lines, style):
    """Every non-blank character of a value maps back to that same character in the file."""
    body = [" ".join(ws) for ws in lines]
    if style in ("|", ">"):
        text = f"key: {style}\n" + "".join(f"  {b}\n" for b in body)
    else:
        value = " ".join(body)
        text = yaml.safe_dump({"key": value}, default_style=None if style == "plain" else style,
                              width=30)
    node = parse_yaml(text, "f")
    node = next(v for k, v in node.value)
    if not isinstance(node.value, str):
        return  # a plain scalar that happens to read as a number
    src = text.splitlines()
    for i, ch in enumerate(node.value):
        if not ch.isspace():
            line, col = node.position_of(i)
            assert src[line - 1][col - 1] == ch, (text, i)


# --- diagnostics ------------------------------------------------------------------------


def test_malformed_yaml(parser):
    assert only_error("a: 1\nb: c: d\n") == (
        2, 5, "malformed YAML: mapping values are not allowed here; if this is text "
              "containing ': ', put the whole text in quotes")
    line, col, msg = only_error("a: 'abc\n")
    assert (line, col) == (2, 1) and msg.startswith("malformed YAML: found unexpected end of")
    assert "line 1, column 4" in msg


def test_tab_indentation_gets_a_hint(parser):
    line, col, msg = only_error("a:\n\t- x\n")
    assert (line, col) == (2, 1) and msg.startswith("malformed YAML")
    assert msg.endswith("tabs cannot be used for indentation, use spaces")


def test_duplicate_keys_all_reported(parser):
    text = "name: x\nearn: 1\nrules:\n  earn: 2\n  earn: 3\nearn: 4\n"
    assert errors(text) == [
        (5, 3, "duplicate key 'earn' (first defined at line 4)"),
        (6, 1, "duplicate key 'earn' (first defined at line 2)"),
    ]


def test_billion_laughs_is_refused_with_bounded_work(parser):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    err, events = traced_work(lambda: only_error("\n".join(lines) + "\n"))
    assert events < 200_000  # about 39,000: the node count stops the expansion, not the machine's patience
    # sizes a..e are 10, 91, 820, 7381, 66430 nodes: the first *e inside f crosses 100,000
    assert err[:2] == (6, 8)
    assert err[2].startswith("too many YAML nodes after expanding aliases (billion-laughs "
                             "protection")


def test_too_many_nodes_without_aliases():
    err = only_error("- 1\n" * (MAX_NODES + 1))
    assert err == (MAX_NODES, 3, f"too many YAML nodes (the limit is {MAX_NODES:,}); split "
                                 "the file")


def test_recursive_and_undefined_aliases(parser):
    assert only_error("a: &x [1, *x]\n") == (
        1, 11, "recursive alias '*x' refers to a value that contains it")
    assert only_error("a: 1\nb: *nope\n") == (
        2, 4, "undefined alias '*nope'; define it first with '&nope'")


def test_nesting_depth_limit(parser):
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    parse_yaml(ok, "f")
    assert only_error("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n") == (
        1, 3 + MAX_DEPTH, f"the data is nested more than {MAX_DEPTH} levels deep; "
                          "flatten the structure")


def test_nesting_depth_counts_expanded_aliases(parser):
    deep = "[" * 40 + "]" * 40
    text = f"x: &x {deep}\ny: " + "[" * 30 + "*x" + "]" * 30 + "\n"
    assert only_error(text)[:2] == (2, 34)  # 1 + 30 open levels + 40 inside *x > 64


def test_non_string_keys(parser):
    assert errors("1: a\ntrue: b\n? [x]\n: c\n~: d\nok: e\n") == [
        (1, 1, 'keys must be strings, got the number 1; put it in quotes ("1") to use it as '
               'a name'),
        (2, 1, 'keys must be strings, got true; put it in quotes ("true") to use it as a name'),
        (3, 3, "keys must be strings, got a list"),
        (5, 1, 'keys must be strings, got an empty key (null); put it in quotes ("~") to use '
               'it as a name'),
    ]


def test_empty_documents(parser):
    for text in ("", "\n\n", "# only a comment\n", "---\n"):
        assert only_error(text) == (1, 1, "the file is empty; expected a mapping")
    assert only_error("\n~\n") == (2, 1, "the document is just null; expected a mapping")


def test_tags(parser):
    assert errors("a: !foo 1\nb: !!python/object:os.system x\nc: !!binary aGk=\n") == [
        (1, 4, "unsupported YAML tag '!foo'; only the standard tags !!str, !!int, !!float, "
               "!!bool, !!null, !!map and !!seq are allowed; remove the tag"),
        (2, 4, "unsupported YAML tag '!!python/object:os.system'; only the standard tags "
                "!!str, !!int, !!float, !!bool, !!null, !!map and !!seq are allowed; "
                "remove the tag"),
        (3, 4, "unsupported YAML tag '!!binary'; only the standard tags !!str, !!int, "
                "!!float, !!bool, !!null, !!map and !!seq are allowed; remove the tag"),
    ]
    assert only_error("a: !!int abc\n") == (
        1, 10, "invalid !!int value 'abc'; remove the tag or fix the value")
    assert only_error("a: !!seq x\n") == (
        1, 4, "the tag !!seq cannot be used on a single value; remove the tag")
    assert only_error("a: !!map [1]\n") == (
        1, 4, "the tag !!map cannot be used on a list; remove the tag")


def test_single_document_only(parser):
    assert only_error("a: 1\n---\nb: 2\n") == (
        2, 1, "expected a single YAML document, but a second one starts here; remove the "
              "'---' line or split the file")


def test_control_characters(parser):
    assert only_error("a: 1\nb: x\x00y\n") == (
        2, 5, "the character U+0000 is not allowed in YAML; remove it")
    assert only_error("a: \ud800\n")[:2] == (1, 4)


def test_size_limit():
    assert only_error("a: " + "x" * MAX_FILE_BYTES + "\n") == (
        1, 1, "the file is too large (1.0 MiB); the limit is 1 MiB")


def test_huge_integer_is_a_diagnostic(parser):
    line, col, msg = only_error("a: " + "9" * 5000 + "\n")
    assert (line, col) == (1, 4) and msg.startswith("cannot read the number '999")


# --- files ---------------------------------------------------------------------------------


def test_read_yaml_names_the_file_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "gold.yaml").write_text("\ufeffa: [1\n", encoding="utf-8")
    with pytest.raises(LabError) as info:
        read_yaml("policies/gold.yaml")
    assert str(info.value).startswith("policies/gold.yaml:2:1: malformed YAML")
    (tmp_path / "ok.yaml").write_text("\ufeffa: 1\n", encoding="utf-8")
    assert read_yaml(tmp_path / "ok.yaml").to_python() == {"a": 1}


def test_read_yaml_missing_file_suggests_a_sibling(tmp_path):
    (tmp_path / "gold.yaml").write_text("a: 1\n")
    with pytest.raises(LabError) as info:
        read_yaml(tmp_path / "glod.yaml")
    (d,) = info.value.diagnostics
    assert (d.line, d.col) == (1, 1)
    assert d.message == "cannot read the file: No such file or directory; did you mean " \
                        "'gold.yaml'?"
    # one file, one name
    with pytest.raises(LabError) as info:
        read_yaml(tmp_path / "nope.yaml")
    assert info.value.diagnostics[0].message.endswith(f"; the only YAML file in {tmp_path} is gold.yaml")
    # a name unlike any beside it gets no guess (the shared '.yaml' would make 'nope.yaml' look like
    # 'grocer.yaml') but the few files there are
    (tmp_path / "grocer.yaml").write_text("a: 1\n")
    with pytest.raises(LabError) as info:
        read_yaml(tmp_path / "nope.yaml")
    assert info.value.diagnostics[0].message == ("cannot read the file: No such file or directory; the YAML files "
                                                 f"in {tmp_path} are: gold.yaml, grocer.yaml")
    # of two files of one name, the one with the extension given
    (tmp_path / "gold.yml").write_text("a: 1\n")
    for typed, meant in (("golf.yaml", "gold.yaml"), ("golf.yml", "gold.yml")):
        with pytest.raises(LabError) as info:
            read_yaml(tmp_path / typed)
        assert info.value.diagnostics[0].message.endswith(f"did you mean '{meant}'?")
    with pytest.raises(LabError) as info:
        read_yaml(tmp_path)
    assert info.value.diagnostics[0].message.startswith("cannot read the file: Is a directory")


def test_read_yaml_rejects_non_utf8_and_large_files(tmp_path):
    bad = tmp_path / "latin.yaml"
    bad.write_bytes(b"a: 1\nname: caf\xe9\n")
    with pytest.raises(LabError) as info:
        read_yaml(bad)
    (d,) = info.value.diagnostics
    assert (d.file, d.line, d.col) == (str(bad), 1, 1)
    assert d.message == ("the file is not UTF-8 text (byte 0xe9 on line 2 cannot be decoded); "
                         "save it as UTF-8")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: '" + b"x" * (2 * MAX_FILE_BYTES) + b"'\n")
    with pytest.raises(LabError) as info:
        read_yaml(big)
    assert info.value.diagnostics[0].message == "the file is too large (2.0 MiB); the limit " \
                                                "is 1 MiB"


# --- robustness ------------------------------------------------------------------------------


def check_diagnostics(err: LabError, file: str) -> None:
    assert err.diagnostics
    for d in err.diagnostics:
        assert isinstance(d, Diagnostic) and d.file == file
        assert d.line >= 1 and d.col >= 1 and d.message
        assert str(d) == f"{file}:{d.line}:{d.col}: {d.message}"


YAMLISH = st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#,? \n\t~<01") + ["\x00"]),
                  max_size=80)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(YAMLISH, st.text(max_size=60)))
def test_arbitrary_text_yields_a_tree_or_lab_error(text):
    try:
        node = parse_yaml(text, "r.yaml")
    except LabError as err:
        check_diagnostics(err, "r.yaml")
    else:
        assert isinstance(node, Node) and node.kind in ("map", "seq", "scalar")
