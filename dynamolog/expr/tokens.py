"""Tokenizer for DynamoDB expressions.

Splits expression text into :class:`Token` objects.  Kinds are ``ID`` (a bare name or
keyword), ``NAME`` (``#placeholder``), ``VALUE`` (``:placeholder``), ``NUM`` (digits, only
meaningful inside ``[...]``), the punctuation itself (``=``, ``<>``, ``(`` ...) and ``EOF``.
Lexical errors are reported as syntax errors with DynamoDB's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dynamolog.errors import validation

EOF = "EOF"

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<NAME>\#[A-Za-z0-9_]+)
    |(?P<VALUE>:[A-Za-z0-9_]+)
    |(?P<ID>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<NUM>[0-9]+)
    |(?P<OP><>|<=|>=|[=<>().,\[\]+\-])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token: its kind, text and half-open character span in the source."""

    kind: str
    text: str
    start: int
    end: int


def syntax_error(kind: str, source: str, tokens: list[Token], index: int) -> Exception:
    """Build DynamoDB's ``Syntax error; token: "...", near: "..."`` for ``tokens[index]``.

    ``near`` is the source text from the previous token to the following one.
    """
    tok = tokens[index]
    text = "<EOF>" if tok.kind == EOF else tok.text
    lo = tokens[index - 1].start if index > 0 else tok.start
    if index + 1 < len(tokens) and tokens[index + 1].kind != EOF:
        hi = tokens[index + 1].end
    elif tok.kind == EOF:
        hi = tokens[index - 1].end if index > 0 else tok.end
    else:
        hi = tok.end
    near = source[lo:hi]
    return validation(f'Invalid {kind}: Syntax error; token: "{text}", near: "{near}"')


def tokenize(source: str, kind: str) -> list[Token]:
    """Split ``source`` into tokens ending with an ``EOF`` token.

    ``kind`` names the request parameter (``ConditionExpression`` ...) for error messages.
    """
    out: list[Token] = []
    pos = 0
    n = len(source)
    while pos < n:
        m = _TOKEN_RE.match(source, pos)
        if m is None:
            bad = Token("BAD", source[pos], pos, pos + 1)
            nxt = _TOKEN_RE.match(source, pos + 1)
            if nxt is not None and nxt.lastgroup == "ws":
                nxt = _TOKEN_RE.match(source, nxt.end())
            extra = [Token("OP", nxt.group(), nxt.start(), nxt.end())] if nxt and nxt.lastgroup != "ws" else []
            raise syntax_error(kind, source, [*out[-1:], bad, *extra], 1 if out else 0)
        group = m.lastgroup
        if group != "ws":
            text = m.group()
            tkind = text if group == "OP" else str(group)
            out.append(Token(tkind, text, m.start(), m.end()))
        pos = m.end()
    out.append(Token(EOF, "", n, n))
    return out
