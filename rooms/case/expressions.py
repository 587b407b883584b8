"""The case expression language: one small grammar for triggers, rates, lab values,
decision correctness, rubric items, outcomes and calibration promises.

Case files come from educators and, through the HTTP API, from anyone holding the admin
key, so an expression is never handed to `eval`: it is tokenized and parsed by the
grammar below, checked against the names and ids its case declares, and compiled to
plain Python closures. Anything outside the grammar is refused with the line and
column at fault.

    expr    = or ;
    or      = and { "or" and } ;
    and     = not { "and" not } ;
    not     = "not" not | compare ;
    compare = sum [ ( "<" | "<=" | ">" | ">=" | "==" | "!=" ) sum ] ;
    sum     = product { ( "+" | "-" ) product } ;
    product = unary { ( "*" | "/" ) unary } ;
    unary   = "-" unary | atom ;
    atom    = number | "true" | "false" | name | call | "(" expr ")" ;
    call    = name "(" [ arg { "," arg } ] ")" ;
    arg     = expr | string ;
    number  = digits [ "." digits ] [ "s" | "min" | "h" ] ;   (10min = 600, 3h = 10800)
    string  = '"' { letter | digit | "_" | ":" } '"' ;        (ids and action keys only)

Values are numbers or booleans, never mixed: `map < 65 and done("give:crystalloid")` is a
boolean, `2 + 3 * sepsis` a number, `sepsis + true` an error. Division by zero gives 0.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

MAX_LENGTH: Final = 4000
MAX_DEPTH: Final = 40
TIME_UNITS: Final = {"s": 1.0, "min": 60.0, "h": 3600.0}
KEYWORDS: Final = frozenset({"and", "or", "not", "true", "false"})


class ExpressionError(ValueError):
    """An expression outside the grammar, or naming something its case does not have."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


# -- tokens -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    """number, name, string, op, end"""
    text: str
    line: int
    column: int
    value: float = 0.0


_TOKEN: Final = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r"|(?P<number>\d+(?:\.\d+)?(?:min|h|s)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<string>\"[^\"\n]*\"|'[^'\n]*')"
    r"|(?P<op><=|>=|==|!=|[<>+\-*/(),])"
)
_STRING_BODY: Final = re.compile(r"^[a-z0-9_:]{1,120}$")
_HINTS: Final = {
    "=": "use '==' to compare",
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not' (or '!=' to compare)",
    "[": "there are no lists or indexes in case expressions",
    ".": "write decimals with a digit before the point (0.5), names without dots",
}


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", 1, 1)
    tokens: list[Token] = []
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        column = pos - line_start + 1
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            hint = _HINTS.get(char, "")
            raise ExpressionError(
                f"unexpected character {char!r}" + (f" ({hint})" if hint else ""), line, column
            )
        kind = match.lastgroup or ""
        chunk = match.group()
        if kind == "space":
            for offset, char in enumerate(chunk):
                if char == "\n":
                    line += 1
                    line_start = pos + offset + 1
        elif kind == "number":
            end = match.end()
            if end < len(text) and text[end] == ".":
                raise ExpressionError(
                    "a number needs digits after its decimal point", line, end - line_start + 1
                )
            if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                raise ExpressionError(
                    f"a number cannot run into {text[end]!r} (units: s, min, h)",
                    line,
                    end - line_start + 1,
                )
            unit = next((u for u in ("min", "h", "s") if chunk.endswith(u)), "")
            value = float(chunk.removesuffix(unit)) * TIME_UNITS.get(unit, 1.0)
            tokens.append(Token("number", chunk, line, column, value))
        elif kind == "string":
            body = chunk[1:-1]
            if not _STRING_BODY.match(body):
                raise ExpressionError(
                    f"{chunk} is not an id or action key (lower-case letters, digits, _ and :)",
                    line,
                    column,
                )
            tokens.append(Token("string", body, line, column))
        else:
            tokens.append(Token(kind, chunk, line, column))
        pos = match.end()
    tokens.append(Token("end", "", line, pos - line_start + 1))
    return tokens


# -- syntax tree -------------------------------------------------------------------------


class Type(Enum):
    NUMBER = "a number"
    BOOLEAN = "true or false"


@dataclass(frozen=True, slots=True)
class Node:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Number(Node):
    value: float
    text: str


@dataclass(frozen=True, slots=True)
class Boolean(Node):
    value: bool


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str


@dataclass(frozen=True, slots=True)
class String(Node):
    value: str


@dataclass(frozen=True, slots=True)
class Negate(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    """+ - * / < <= > >= == != and or"""
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str
    args: tuple[Node, ...]


_COMPARE: Final = ("<", "<=", ">", ">=", "==", "!=")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def fail(self, message: str, token: Token | None = None) -> ExpressionError:
        at = token or self.token
        return ExpressionError(message, at.line, at.column)

    def describe(self, token: Token) -> str:
        return "the end of the expression" if token.kind == "end" else repr(token.text)

    def take(self, kind: str, text: str | None = None) -> Token | None:
        token = self.token
        if token.kind == kind and (text is None or token.text == text):
            self.index += 1
            return token
        return None

    def keyword(self, word: str) -> Token | None:
        return self.take("name", word)

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.fail("the expression is empty")
        node = self.or_()
        if self.token.kind != "end":
            raise self.fail(f"unexpected {self.describe(self.token)} (an operator is missing?)")
        return node

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep")

    def or_(self) -> Node:
        node = self.and_()
        while (op := self.keyword("or")) is not None:
            node = Binary(op.line, op.column, "or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while (op := self.keyword("and")) is not None:
            node = Binary(op.line, op.column, "and", node, self.not_())
        return node

    def not_(self) -> Node:
        op = self.keyword("not")
        if op is None:
            return self.compare()
        self.nested()
        node = Not(op.line, op.column, self.not_())
        self.depth -= 1
        return node

    def compare(self) -> Node:
        node = self.sum()
        token = self.token
        if token.kind == "op" and token.text in _COMPARE:
            self.index += 1
            node = Binary(token.line, token.column, token.text, node, self.sum())
            after = self.token
            if after.kind == "op" and after.text in _COMPARE:
                raise self.fail("comparisons do not chain; join them with 'and'", after)
        return node

    def sum(self) -> Node:
        node = self.product()
        while self.token.kind == "op" and self.token.text in ("+", "-"):
            op = self.token
            self.index += 1
            node = Binary(op.line, op.column, op.text, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.token.kind == "op" and self.token.text in ("*", "/"):
            op = self.token
            self.index += 1
            node = Binary(op.line, op.column, op.text, node, self.unary())
        return node

    def unary(self) -> Node:
        op = self.take("op", "-")
        if op is None:
            return self.atom()
        self.nested()
        node = Negate(op.line, op.column, self.unary())
        self.depth -= 1
        return node

    def atom(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.index += 1
            return Number(token.line, token.column, token.value, token.text)
        if token.kind == "string":
            raise self.fail(
                f"a quoted id ({token.text!r}) can only be a function's argument, e.g. "
                f'done("{token.text}")'
            )
        if self.take("op", "("):
            self.nested()
            node = self.or_()
            self.depth -= 1
            if self.take("op", ")") is None:
                raise self.fail(f"expected ')' but found {self.describe(self.token)}")
            return node
        if token.kind == "name":
            if token.text in ("and", "or", "not"):
                raise self.fail(f"{token.text!r} needs a value before it")
            self.index += 1
            if token.text in ("true", "false"):
                return Boolean(token.line, token.column, token.text == "true")
            if self.take("op", "("):
                return self.call(token)
            return Name(token.line, token.column, token.text)
        raise self.fail(f"expected a value but found {self.describe(token)}")

    def call(self, name: Token) -> Node:
        self.nested()
        args: list[Node] = []
        if self.take("op", ")") is None:
            while True:
                string = self.take("string")
                if string is not None:
                    args.append(String(string.line, string.column, string.text))
                else:
                    args.append(self.or_())
                if self.take("op", ")") is not None:
                    break
                if self.take("op", ",") is None:
                    found = self.describe(self.token)
                    raise self.fail(f"expected ',' or ')' in {name.text}(...) but found {found}")
        self.depth -= 1
        return Call(name.line, name.column, name.text, tuple(args))


def parse(text: str) -> Node:
    """The syntax tree of `text`, or `ExpressionError` with the line and column at fault."""
    return _Parser(text).parse()


def unparse(node: Node) -> str:
    """Text that parses back to `node` (fully parenthesised)."""
    match node:
        case Number(text=text):
            return text
        case Boolean(value=value):
            return "true" if value else "false"
        case Name(name=name):
            return name
        case String(value=value):
            return f'"{value}"'
        case Negate(operand=operand):
            return f"-({unparse(operand)})"
        case Not(operand=operand):
            return f"not ({unparse(operand)})"
        case Binary(op=op, left=left, right=right):
            return f"({unparse(left)}) {op} ({unparse(right)})"
        case Call(function=function, args=args):
            return f"{function}({', '.join(unparse(a) for a in args)})"
    raise TypeError(f"not an expression node: {node!r}")


# -- names, functions and types --------------------------------------------------------


class Ref(Enum):
    """What a quoted argument must name."""

    ACTION = "an action key"
    EVENT = "an event"
    MOMENT = "an event or an action key"
    PHASE = "a phase"
    DECISION = "a decision"


@dataclass(frozen=True, slots=True)
class Signature:
    params: tuple[Type | Ref, ...]
    result: Type | None
    """None: the type of the 2nd and 3rd arguments (if)."""
    variadic: bool = False
    doc: str = ""


FUNCTIONS: Final[Mapping[str, Signature]] = {
    "done": Signature((Ref.ACTION,), Type.BOOLEAN, doc="the team has done it at least once"),
    "count": Signature((Ref.ACTION,), Type.NUMBER, doc="how many times the team did it"),
    "total": Signature(
        (Ref.ACTION,), Type.NUMBER, doc="total dose given (per-kg doses times the weight)"
    ),
    "since": Signature(
        (Ref.MOMENT,),
        Type.NUMBER,
        doc="seconds since the event fired or the action was last done (very large if never)",
    ),
    "fired": Signature((Ref.EVENT,), Type.BOOLEAN, doc="the event has happened"),
    "in_phase": Signature((Ref.PHASE,), Type.BOOLEAN, doc="the case is in this phase now"),
    "correct": Signature(
        (Ref.DECISION,), Type.BOOLEAN, doc="the decision was made and judged correct then"
    ),
    "min": Signature((Type.NUMBER, Type.NUMBER), Type.NUMBER, True, "the smallest"),
    "max": Signature((Type.NUMBER, Type.NUMBER), Type.NUMBER, True, "the largest"),
    "clamp": Signature((Type.NUMBER,) * 3, Type.NUMBER, doc="clamp(x, low, high)"),
    "abs": Signature((Type.NUMBER,), Type.NUMBER, doc="absolute value"),
    "if": Signature((Type.BOOLEAN, Type.NUMBER, Type.NUMBER), None, doc="if(test, then, else)"),
    "all": Signature((Type.BOOLEAN, Type.BOOLEAN), Type.BOOLEAN, True, "every one is true"),
    "any": Signature((Type.BOOLEAN, Type.BOOLEAN), Type.BOOLEAN, True, "at least one is true"),
}


class Scope(Protocol):
    """The names and ids a case declares, against which its expressions are checked."""

    def names(self) -> Mapping[str, str]:
        """Every name an expression may use here -> what it is (for messages)."""

    def refs(self, kind: Ref) -> Sequence[str] | None:
        """Ids allowed for a quoted argument of this kind (None: checked by `check_key`)."""

    def check_key(self, key: str) -> str:
        """ "" if `key` is a valid action key in this case, else what is wrong with it."""


class Env(Protocol):
    """What compiled expressions read while a case runs."""

    values: dict[str, float]
    """State variables, vitals, measures and built-ins by name, kept current by the case."""

    def count(self, key: str) -> float: ...
    def total(self, key: str) -> float: ...
    def since(self, moment: str) -> float: ...
    def fired(self, event: str) -> bool: ...
    def in_phase(self, phase: str) -> bool: ...
    def correct(self, decision: str) -> bool: ...


Compiled = Callable[[Env], float]
"""A compiled expression: numbers as floats, booleans as bools (a bool is an int)."""


def _allowed(ids: Sequence[str], limit: int = 30) -> str:
    shown = sorted(ids)[:limit]
    more = f", ... ({len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(shown) + more if shown else "none in this case"


class _Checker:
    """Type-checks a tree against a scope and compiles it."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.names = scope.names()

    def fail(self, node: Node, message: str) -> ExpressionError:
        return ExpressionError(message, node.line, node.column)

    def expect(self, node: Node, wanted: Type) -> Compiled:
        kind, fn = self.compile(node)
        if kind is not wanted:
            raise self.fail(node, f"this is {kind.value} where {wanted.value} is needed")
        return fn

    def compile(self, node: Node) -> tuple[Type, Compiled]:
        match node:
            case Number(value=value):
                return Type.NUMBER, lambda env: value
            case Boolean(value=flag):
                return Type.BOOLEAN, lambda env: flag
            case Name(name=name):
                if name not in self.names:
                    known = _allowed(list(self.names))
                    raise self.fail(node, f"unknown name {name!r} (known: {known})")
                return Type.NUMBER, lambda env: env.values[name]
            case String(value=value):
                raise self.fail(node, f'"{value}" can only be an argument of a function')
            case Negate(operand=operand):
                inner = self.expect(operand, Type.NUMBER)
                return Type.NUMBER, lambda env: -inner(env)
            case Not(operand=operand):
                inner = self.expect(operand, Type.BOOLEAN)
                return Type.BOOLEAN, lambda env: not inner(env)
            case Binary():
                return self.binary(node)
            case Call():
                return self.call(node)
        raise self.fail(node, "not an expression")

    def binary(self, node: Binary) -> tuple[Type, Compiled]:
        op = node.op
        if op in ("and", "or"):
            a, b = self.expect(node.left, Type.BOOLEAN), self.expect(node.right, Type.BOOLEAN)
            if op == "and":
                return Type.BOOLEAN, lambda env: bool(a(env)) and bool(b(env))
            return Type.BOOLEAN, lambda env: bool(a(env)) or bool(b(env))
        a, b = self.expect(node.left, Type.NUMBER), self.expect(node.right, Type.NUMBER)
        kind = Type.BOOLEAN if op in _COMPARE else Type.NUMBER
        fused = _fused(op, node.left, node.right)
        return kind, fused if fused is not None else _arithmetic(op, a, b)

    def ref(self, node: Node, kind: Ref, function: str) -> str:
        if not isinstance(node, String):
            raise self.fail(node, f'{function}(...) takes {kind.value} in quotes, e.g. "..."')
        value = node.value
        if kind in (Ref.ACTION, Ref.MOMENT):
            events = self.scope.refs(Ref.EVENT) or []
            if kind is Ref.MOMENT and value in events:
                return value
            problem = self.scope.check_key(value)
            if problem:
                extra = f" or an event ({_allowed(events)})" if kind is Ref.MOMENT else ""
                raise self.fail(node, problem + extra)
            return value
        ids = self.scope.refs(kind) or []
        if value not in ids:
            what = kind.value.split(" ", 1)[1]
            raise self.fail(node, f"unknown {what} {value!r} (known: {_allowed(ids)})")
        return value

    def call(self, node: Call) -> tuple[Type, Compiled]:
        signature = FUNCTIONS.get(node.function)
        if signature is None:
            raise self.fail(
                node, f"unknown function {node.function!r} (known: {_allowed(list(FUNCTIONS))})"
            )
        params, args = signature.params, node.args
        if len(args) < len(params) or (len(args) > len(params) and not signature.variadic):
            wanted = f"{len(params)}{' or more' if signature.variadic else ''}"
            raise self.fail(node, f"{node.function}() takes {wanted} arguments, not {len(args)}")
        if isinstance(params[0], Ref):
            return self.ref_call(node, params[0], signature)
        name = node.function
        if name == "if":
            test = self.expect(args[0], Type.BOOLEAN)
            kind, then = self.compile(args[1])
            other = self.expect(args[2], kind)
            return kind, lambda env: then(env) if test(env) else other(env)
        wanted_type = params[0]
        assert isinstance(wanted_type, Type)
        parts = [self.expect(a, wanted_type) for a in args]
        if name == "min":
            return Type.NUMBER, lambda env: min(p(env) for p in parts)
        if name == "max":
            return Type.NUMBER, lambda env: max(p(env) for p in parts)
        if name == "clamp":
            x, low, high = parts
            return Type.NUMBER, lambda env: min(high(env), max(low(env), x(env)))
        if name == "abs":
            [x] = parts
            return Type.NUMBER, lambda env: abs(x(env))
        if name == "all":
            return Type.BOOLEAN, lambda env: all(p(env) for p in parts)
        return Type.BOOLEAN, lambda env: any(p(env) for p in parts)

    def ref_call(self, node: Call, kind: Ref, signature: Signature) -> tuple[Type, Compiled]:
        arg = self.ref(node.args[0], kind, node.function)
        result = signature.result
        assert result is not None
        readers: dict[str, Compiled] = {
            "done": lambda env: env.count(arg) > 0,
            "count": lambda env: env.count(arg),
            "total": lambda env: env.total(arg),
            "since": lambda env: env.since(arg),
            "fired": lambda env: env.fired(arg),
            "in_phase": lambda env: env.in_phase(arg),
            "correct": lambda env: env.correct(arg),
        }
        return result, readers[node.function]


_PLAIN: Final[dict[str, Callable[[float, float], float | bool]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _fused(op: str, left: Node, right: Node) -> Compiled | None:
    """One closure for an operator between names and numbers (most of a case's
    arithmetic: `0.03 * blood_loss`, `map < 65`), instead of one per node. Names hold
    finite numbers, so only a division by a name needs the zero guard."""
    plain = _PLAIN.get(op)
    if op == "/" and isinstance(right, Number) and right.value != 0:
        plain = operator.truediv
    if plain is None:
        return None
    f = plain
    match left, right:
        case Name(name=x), Number(value=c):
            return lambda env: f(env.values[x], c)
        case Number(value=c), Name(name=y):
            return lambda env: f(c, env.values[y])
        case Name(name=x), Name(name=y):
            return lambda env: f(env.values[x], env.values[y])
        case Number(value=c), Number(value=d):
            folded = f(c, d)
            return lambda env: folded
    return None


def _arithmetic(op: str, a: Compiled, b: Compiled) -> Compiled:
    """One closure per operator (no table lookup per evaluation); 0 x anything is 0 (so
    0 x a never-happened `since` stays 0) and a division by zero or infinity is 0."""
    if op == "+":
        return lambda env: a(env) + b(env)
    if op == "-":
        return lambda env: a(env) - b(env)
    if op == "*":

        def times(env: Env) -> float:
            x = a(env)
            if x == 0:
                return 0.0
            y = b(env)
            return 0.0 if y == 0 else x * y

        return times
    if op == "/":

        def divide(env: Env) -> float:
            y = b(env)
            return a(env) / y if y != 0 and math.isfinite(y) else 0.0

        return divide
    if op == "<":
        return lambda env: a(env) < b(env)
    if op == "<=":
        return lambda env: a(env) <= b(env)
    if op == ">":
        return lambda env: a(env) > b(env)
    if op == ">=":
        return lambda env: a(env) >= b(env)
    if op == "==":
        return lambda env: a(env) == b(env)
    return lambda env: a(env) != b(env)


@dataclass(frozen=True, slots=True)
class Expression:
    """A checked, compiled expression and the text it came from."""

    text: str
    type: Type
    evaluate: Compiled
    names: frozenset[str]
    """Names it reads (for dependency checks and docs)."""


def _names_in(node: Node) -> set[str]:
    match node:
        case Name(name=name):
            return {name}
        case Negate(operand=operand) | Not(operand=operand):
            return _names_in(operand)
        case Binary(left=left, right=right):
            return _names_in(left) | _names_in(right)
        case Call(args=args):
            return set().union(*(_names_in(a) for a in args)) if args else set()
    return set()


def compile_expression(text: str, scope: Scope, wanted: Type) -> Expression:
    """Parse, check and compile `text` as `wanted`; `ExpressionError` says where it is wrong."""
    tree = parse(text)
    fn = _Checker(scope).expect(tree, wanted)
    return Expression(text, wanted, fn, frozenset(_names_in(tree)))


def number(expression: Expression, env: Env) -> float:
    """A numeric expression's value, 0 where it is not a finite number (e.g. since() of
    something that never happened, used in arithmetic)."""
    value = float(expression.evaluate(env))
    return value if math.isfinite(value) else 0.0


def holds(expression: Expression, env: Env) -> bool:
    return bool(expression.evaluate(env))
