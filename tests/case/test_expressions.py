"""The case expression language: its grammar, its types and its refusals.

Expressions come from educators' files (and over the API), so anything outside the
grammar must be refused with the line and column at fault, never evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.case import CaseError, parse_case
from rooms.case.expressions import (
    FUNCTIONS,
    ExpressionError,
    Ref,
    Type,
    compile_expression,
    parse,
    unparse,
)
from rooms.case.happenings import Happenings
from rooms.case.loader import shipped_case_files

NAMES = ("map", "hr", "loss", "tone", "t")


class Scope:
    def names(self) -> Mapping[str, str]:
        return dict.fromkeys(NAMES, "test")

    def refs(self, kind: Ref) -> Sequence[str] | None:
        return {Ref.EVENT: ["birth"], Ref.PHASE: ["one", "two"], Ref.DECISION: ["d"]}.get(kind)

    def check_key(self, key: str) -> str:
        return "" if key.split(":")[0] in ("give", "order") else f"unknown action {key!r}"


def env(**values: float) -> Happenings:
    happenings = Happenings()
    happenings.values.update({n: 0.0 for n in NAMES} | values)
    return happenings


def value(text: str, wanted: Type = Type.NUMBER, **values: float) -> float:
    return compile_expression(text, Scope(), wanted).evaluate(env(**values))


# -- valid expressions, generated -------------------------------------------------------

numbers = st.one_of(
    st.integers(0, 10**6).map(str),
    st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 999), st.integers(0, 999)),
    st.builds(lambda a, u: f"{a}{u}", st.integers(0, 999), st.sampled_from(["s", "min", "h"])),
)


def numeric(depth: int) -> st.SearchStrategy[str]:
    leaf = numbers | st.sampled_from(NAMES) | st.just('count("give:txa")')
    if depth == 0:
        return leaf
    inner = numeric(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from("+-*/"), inner),
        st.builds(lambda a: f"-{a}", inner),
        st.builds(lambda a: f"({a})", inner),
        st.builds(lambda a, b: f"max({a}, {b})", inner, inner),
        st.builds(lambda c, a, b: f"if({c}, {a}, {b})", boolean(depth - 1), inner, inner),
    )


def boolean(depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(['done("give:txa")', 'fired("birth")', 'in_phase("two")', "true"])
    compare = st.builds(
        lambda a, op, b: f"{a} {op} {b}",
        numeric(max(0, depth - 1)),
        st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
        numeric(max(0, depth - 1)),
    )
    if depth == 0:
        return leaf | compare
    inner = boolean(depth - 1)
    return st.one_of(
        leaf,
        compare,
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or"]), inner),
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a: f"({a})", inner),
        st.builds(lambda a, b: f"all({a}, {b})", inner, inner),
    )


def multiline(text: str, breaks: list[int]) -> str:
    """Put line breaks at some of the spaces (whitespace is whitespace)."""
    parts = text.split(" ")
    return "".join(p + ("\n" if i in breaks else " ") for i, p in enumerate(parts)).rstrip()


@settings(max_examples=300, deadline=None)
@given(boolean(3), st.lists(st.integers(0, 40), max_size=4))
def test_generated_expressions_parse_check_evaluate_and_round_trip(
    text: str, breaks: list[int]
) -> None:
    text = multiline(text, breaks)
    compiled = compile_expression(text, Scope(), Type.BOOLEAN)
    assert isinstance(compiled.evaluate(env(map=60, loss=1200)), bool)
    printed = unparse(parse(text))
    assert unparse(parse(printed)) == printed


BAD_CHARACTERS = "$@`;[]{}?#~^%\\&|"


@settings(max_examples=300, deadline=None)
@given(boolean(2), st.lists(st.integers(0, 40), max_size=3), st.data())
def test_a_character_outside_the_grammar_is_refused_at_its_line_and_column(
    text: str, breaks: list[int], data: st.DataObject
) -> None:
    text = multiline(text, breaks)
    strings = [i for i, c in enumerate(text) if c == '"']
    inside = {i for a, b in zip(strings[::2], strings[1::2], strict=True) for i in range(a, b + 1)}

    def splits_a_token(i: int) -> bool:  # "lo$ss", "10$.5", "0m$in": the pieces are wrong too
        before, after = text[i - 1 : i], text[i : i + 1]
        return bool(before and after) and before[0] not in ' \n(),"' and after[0] not in ' \n(),"'

    spots = [i for i in range(len(text) + 1) if i not in inside and not splits_a_token(i)]
    at = data.draw(st.sampled_from(spots))
    bad = data.draw(st.sampled_from(BAD_CHARACTERS))
    broken = text[:at] + bad + text[at:]
    with pytest.raises(ExpressionError) as caught:
        compile_expression(broken, Scope(), Type.BOOLEAN)
    line = broken.count("\n", 0, at) + 1
    column = at - (broken.rfind("\n", 0, at) + 1) + 1
    assert (caught.value.line, caught.value.column) == (line, column)
    assert str(caught.value).startswith(f"line {line}, column {column}: ")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_an_expression_or_a_located_refusal(text: str) -> None:
    try:
        compile_expression(text, Scope(), Type.BOOLEAN)
    except ExpressionError as error:
        assert 1 <= error.line <= text.count("\n") + 1
        assert error.column >= 1 and error.message


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('__import__("os")', "unknown function '__import__'"),
        ('eval("1")', "unknown function 'eval'"),
        ("open", "unknown name 'open'"),
        ("loss.real > 0", "unexpected character '.'"),
        ("loss[0] > 0", "no lists or indexes"),
        ("lambda: 1", "unexpected character ':'"),
        ("1 if map else 2", "unexpected 'if'"),
        ("map ** 2 > 1", "expected a value but found '*'"),
        ('"give:txa"', "can only be a function's argument"),
        ("map = 60", "use '==' to compare"),
        ("map > 60 && hr > 100", "use 'and'"),
        ("!fired", "use 'not'"),
        ("map > 60 > 40", "comparisons do not chain"),
        ("map >", "expected a value but found the end of the expression"),
        ("(map > 60", "expected ')'"),
        ("", "the expression is empty"),
        ("map + true > 1", "this is true or false where a number is needed"),
        ("loss", "this is a number where true or false is needed"),
        ('done("give:txa") + 1 > 0', "this is true or false where a number is needed"),
        ("if(map, 1, 2) > 0", "this is a number where true or false is needed"),
        ("since(birth) > 0", "takes an event or an action key in quotes"),
        ('fired("death")', "unknown event 'death' (known: birth)"),
        ('done("call:x")', "unknown action 'call:x'"),
        ("max(1) > 0", "max() takes 2 or more arguments, not 1"),
        ("clamp(1, 2) > 0", "clamp() takes 3 arguments, not 2"),
        ("3x > 1", "a number cannot run into 'x'"),
        ("10 min > 1", "unexpected 'min' (an operator is missing?)"),
        ("1. > 0", "a number needs digits after its decimal point"),
        ('done("Give:TXA")', "is not an id or action key"),
        ("not", "expected a value but found the end of the expression"),
        ("and map > 1", "'and' needs a value before it"),
    ],
)
def test_text_outside_the_grammar_or_its_types_is_refused_with_a_reason(
    text: str, says: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text, Scope(), Type.BOOLEAN)
    assert says in caught.value.message, caught.value.message


def test_deep_nesting_and_huge_texts_are_refused_not_recursed() -> None:
    with pytest.raises(ExpressionError, match="nested more than"):
        parse("(" * 1000 + "1" + ")" * 1000)
    with pytest.raises(ExpressionError, match="nested more than"):
        parse("-" * 1000 + "1")
    with pytest.raises(ExpressionError, match="longer than"):
        parse("1 + " * 2000 + "1")


# -- meaning ------------------------------------------------------------------------------


def test_arithmetic_precedence_units_and_safe_division() -> None:
    assert value("2 + 3 * 4") == 14
    assert value("(2 + 3) * 4") == 20
    assert value("-2 * -3") == 6
    assert value("10 - 4 - 3") == 3
    assert value("3h + 10min + 5s") == 3 * 3600 + 600 + 5
    assert value("1 / 0") == 0
    assert value("loss / 2", loss=1500) == 750
    assert value("clamp(loss, 0, 1000)", loss=1500) == 1000
    assert value("min(3, 1, 2) + max(3, 1, 2) + abs(-4)") == 8
    assert value("if(map < 65, 1, 2)", map=60) == 1


def test_logic_and_what_happened() -> None:
    assert value("map < 65 and not (hr > 120)", Type.BOOLEAN, map=60, hr=100) is True
    assert value("map < 65 or hr > 120", Type.BOOLEAN, map=70, hr=100) is False
    assert value("any(map < 65, hr > 120, false)", Type.BOOLEAN, hr=130) is True
    happenings = env(t=7200)
    happenings.values["t"] = 100
    happenings.action("give:txa", 1.0)
    happenings.action("give:txa", 2.0)
    happenings.values["t"] = 400
    scope = Scope()
    for text, expected in [
        ('count("give:txa")', 2),
        ('total("give:txa")', 3.0),
        ('count("give")', 2),
        ('since("give:txa")', 300),
        ('since("birth") > 1000000', True),
        ('done("order")', False),
    ]:
        wanted = Type.BOOLEAN if isinstance(expected, bool) else Type.NUMBER
        assert compile_expression(text, scope, wanted).evaluate(happenings) == expected, text
    never = compile_expression('since("order:x")', scope, Type.NUMBER).evaluate(happenings)
    assert never == math.inf


def test_every_function_is_documented() -> None:
    guide = (shipped_case_files()[0].parents[2] / "docs" / "cases.md").read_text()
    for name, signature in FUNCTIONS.items():
        assert signature.doc
        assert f"`{name}(" in guide, name


# -- inside a case file ---------------------------------------------------------------------


def test_a_bad_expression_in_a_case_file_names_the_file_line_field_and_column() -> None:
    path = next(p for p in shipped_case_files() if p.stem == "septic_shock_ed")
    text = path.read_text().replace(
        "    when: map < 55\n", "    when: |\n      map < 55 and\n        hr >> 100\n"
    )
    lines = text.splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "hr >> 100" in t)
    with pytest.raises(CaseError) as caught:
        parse_case(text, "septic.yaml")
    [problem] = caught.value.problems
    assert problem.line == line
    assert str(caught.value) == (
        f"septic.yaml:{line}: events.refractory_hypotension.when: column 7: "
        "expected a value but found '>'"
    )


def test_an_expression_naming_what_the_case_lacks_is_refused_with_what_it_has() -> None:
    path = next(p for p in shipped_case_files() if p.stem == "septic_shock_ed")
    data = yaml.safe_load(path.read_text())
    data["events"]["drowsier"]["when"] = 'not done("give:crystaloid")'
    data["outcome"]["good_if"] = "sepsis <= 0.4"
    with pytest.raises(CaseError) as caught:
        parse_case(yaml.safe_dump(data), "septic.yaml")
    messages = {p.path: p.message for p in caught.value.problems}
    assert "unknown drug or fluid 'crystaloid'" in messages[("events", "drowsier", "when")]
    assert "unknown name 'sepsis'" in messages[("outcome", "good_if")]
    assert "septic_shock" in messages[("outcome", "good_if")]
