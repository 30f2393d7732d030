"""Reading raw objects: gzip or plain, newline-delimited or concatenated JSON, bad input kept.

``iter_json_objects`` yields every JSON value of an object with its line number;
what cannot be read becomes a ``BadLine`` (written under ``errors/``, never
dropped), and the rest of the object is still read. Memory stays bounded by the
chunk size whatever the object's size or shape.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from chalicelib.ingest.strictjson import DECODER, json_bytes

GZIP_MAGIC = b"\x1f\x8b"
READ_BYTES = 1024 * 1024
# A line longer than this is decoded as it streams: it is concatenated objects with
# no newline between them (a Firehose stream without a delimiter), never one record.
MAX_LINE_BYTES = 1024 * 1024
# One object larger than this is not a stored event; it becomes a bad line.
MAX_OBJECT_CHARS = 4 * 1024 * 1024
BAD_LINE_CONTENT_CHARS = 64 * 1024
# Decompression budget: gzip'd NDJSON expands 5-20x, and a Firehose object holds at
# most 128 MiB before compression. Past the floor, an object that expands more than
# the ratio is a decompression bomb: it stops there, as one bad line.
EXPANSION_FLOOR_BYTES = 256 * 1024 * 1024
MAX_EXPANSION_RATIO = 100
_NON_BLANK = re.compile(rb"[^\n]+")


@dataclass(frozen=True)
class BadLine:
    """A line that could not become a row; written under ``errors/``, never dropped."""

    source: str
    line: int
    reason: str
    content: str

    def to_json(self) -> bytes:
        record = {
            "source": self.source,
            "line": self.line,
            "reason": self.reason,
            "content": self.content,  # lone surrogates in it are kept, escaped
        }
        return json_bytes(record) + b"\n"


class StreamError(Exception):
    """The object itself is damaged (truncated gzip); what was read before is kept."""


def iter_decompressed(raw: BinaryIO) -> Iterator[bytes]:
    """Bytes of a plain or gzip object (told by magic bytes: Firehose names vary),
    in bounded chunks, across concatenated gzip members."""
    data = raw.read(READ_BYTES)
    if data[:2] != GZIP_MAGIC:
        while data:
            yield data
            data = raw.read(READ_BYTES)
        return
    inflater = zlib.decompressobj(wbits=31)
    in_member = True
    read, written = len(data), 0
    while data:
        while data:
            try:
                out = inflater.decompress(data, READ_BYTES)
            except zlib.error as exc:
                raise StreamError(f"gzip data is damaged: {exc}") from None
            if out:
                written += len(out)
                if written > EXPANSION_FLOOR_BYTES and written > read * MAX_EXPANSION_RATIO:
                    raise StreamError(
                        f"gzip data expands more than {MAX_EXPANSION_RATIO} times (past "
                        f"{written // 2**20} MiB from {read // 2**10} KiB): a decompression "
                        "bomb? The rest of the object was not read"
                    )
                yield out
            if inflater.eof:
                data = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
                in_member = bool(data)
            else:
                data = inflater.unconsumed_tail
                in_member = True
        data = raw.read(READ_BYTES)
        read += len(data)
        in_member = in_member or bool(data)
    if in_member and not inflater.eof:
        raise StreamError("gzip data ends early (truncated object)")


def _iter_lines(raw: BinaryIO) -> Iterator[tuple[list[bytes], bool, int]]:
    """``(lines, complete, blank lines before the first)``, a chunk's lines at a time (one
    resumption per chunk, not per line). Lines are split in C over whole chunks; runs of
    blank lines are skipped in C too (a file of newlines costs no Python loop per line).
    A line longer than MAX_LINE_BYTES comes in pieces, one per batch, ``complete`` only
    on its last."""
    tail = b""
    in_long_line = False
    blanks = 0
    for chunk in iter_decompressed(raw):
        if in_long_line:
            end = chunk.find(b"\n")
            if end < 0:
                yield [chunk], False, 0
                continue
            yield [chunk[:end]], True, 0
            in_long_line = False
            chunk = chunk[end + 1 :]
        if b"\n\n" in chunk:
            # Blank lines: never split them into objects (a chunk of newlines would be a
            # million empty ones); the runs of them are skipped in C below.
            data = tail + chunk if tail else chunk
            last = data.rfind(b"\n")
            body, tail = (data[:last], data[last + 1 :]) if last >= 0 else (b"", data)
            lines = [body] if last >= 0 else []
            usual = False
        else:
            # Split the chunk itself (copying it whole, to join the tail, costs more than
            # the split here): the tail only joins the first line.
            lines = chunk.split(b"\n")
            if tail:
                lines[0] = tail + lines[0]
            tail = lines.pop()
            usual = b"" not in lines
        if not lines:
            pass
        elif usual:
            yield lines, True, blanks
            blanks = 0
        else:
            body = lines[0] if len(lines) == 1 else b"\n".join(lines)
            if body.count(b"\n") == len(body):  # nothing but blank lines
                blanks += len(body) + 1
            else:
                position = 0  # where the next line starts
                for match in _NON_BLANK.finditer(body):
                    yield [match.group()], True, blanks + match.start() - position
                    blanks = 0
                    position = match.end() + 1
                blanks += len(body) + 1 - position
        if len(tail) > MAX_LINE_BYTES:
            yield [tail], False, blanks
            blanks = 0
            tail = b""
            in_long_line = True
    if tail or in_long_line:
        yield [tail], True, blanks


def iter_json_objects(stream: BinaryIO, source: str) -> Iterator[tuple[int, Any, bytes | None]]:
    """Yield ``(line_number, value, line)`` for every JSON value; bad input as ``BadLine``.

    Accepts gzip or plain, newline-delimited JSON and concatenated objects
    (``{...}{...}``) on one line or spread over megabytes without a newline.
    ``line`` is the raw text when the value is the whole line, else None.
    Whole lines are parsed by orjson, which reads an integer beyond 64 bits as a
    float; ``exact_numbers(line)`` parses such a line again, exactly.
    """
    line_number = 0
    loads = orjson.loads
    long_line: _LongLineDecoder | None = None
    try:
        for lines, complete, blanks in _iter_lines(stream):
            line_number += blanks
            if long_line is not None or not complete:
                [line] = lines  # a piece of a long line (or its end) comes alone
                if long_line is None:
                    line_number += 1
                    long_line = _LongLineDecoder(source, line_number)
                yield from ((line_number, v, None) for v in long_line.feed(line, complete))
                if complete:
                    long_line = None
                continue
            for line in lines:
                line_number += 1
                try:
                    yield line_number, loads(line), line
                    continue
                except orjson.JSONDecodeError:
                    pass
                stripped = line.strip()
                if stripped:
                    for value in _decode_concatenated(stripped, line_number, source):
                        yield line_number, value, None
    except StreamError as exc:
        yield line_number + 1, BadLine(source, line_number + 1, str(exc), ""), None


def exact_numbers(line: bytes) -> Any:
    """The standard library's reading of a line: integers of any size stay exact."""
    return DECODER.decode(line.decode("utf-8"))


def _decode_text(data: bytes, line_number: int, source: str) -> str | BadLine:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        content = data[:BAD_LINE_CONTENT_CHARS].decode("utf-8", "backslashreplace")
        return BadLine(source, line_number, f"not UTF-8 (byte {exc.start})", content)


def _decode_concatenated(data: bytes, line_number: int, source: str) -> Iterator[Any]:
    text = _decode_text(data, line_number, source)
    if isinstance(text, BadLine):
        yield text
        return
    position, end = 0, len(text)
    while position < end:
        while position < end and text[position].isspace():
            position += 1
        if position >= end:
            return
        try:
            value, position = DECODER.raw_decode(text, position)
        except (ValueError, RecursionError) as exc:
            resume = next_object(text, position)
            yield from _bad_span(source, line_number, f"not JSON: {exc}", text[position:resume])
            position = resume
            continue
        yield value


def next_object(text: str, position: int) -> int:
    """Where decoding can start again after a bad object: the next ``}{`` (how a stream
    without delimiters joins objects), else the end of the text."""
    found = text.find("}{", position)
    return len(text) if found < 0 else found + 1


def _bad_span(source: str, line_number: int, reason: str, span: str) -> Iterator[BadLine]:
    """A skipped span as bad lines of at most BAD_LINE_CONTENT_CHARS each: kept whole."""
    pieces = max(1, -(-len(span) // BAD_LINE_CONTENT_CHARS))
    for piece in range(pieces):
        content = span[piece * BAD_LINE_CONTENT_CHARS : (piece + 1) * BAD_LINE_CONTENT_CHARS]
        shown = reason if pieces == 1 else f"{reason} (part {piece + 1} of {pieces})"
        yield BadLine(source, line_number, shown, content)


class _LongLineDecoder:
    """Objects out of one very long line, as its pieces arrive."""

    def __init__(self, source: str, line_number: int) -> None:
        self._source = source
        self._line_number = line_number
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        self._text = ""
        self._skip_reason = ""  # set while skipping a bad object up to the next }{

    def feed(self, piece: bytes, final: bool) -> Iterator[Any]:
        text = self._text + self._decoder.decode(piece, final=final)
        position = 0
        while True:
            if self._skip_reason:
                resume = text.find("}{", position)
                if resume < 0:
                    # Keep the last character: a }{ may straddle two pieces.
                    keep = len(text) if final else max(position, len(text) - 1)
                    yield from self._bad(text[position:keep])
                    position = keep
                    break
                yield from self._bad(text[position : resume + 1])
                position = resume + 1
                self._skip_reason = ""
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                break
            try:
                value, position = DECODER.raw_decode(text, position)
            except (ValueError, RecursionError) as exc:
                if not final and len(text) - position < MAX_OBJECT_CHARS:
                    break  # the object continues in the next piece
                self._skip_reason = f"not JSON: {exc}"
                continue
            yield value
        if final and self._skip_reason and position < len(text):
            yield from self._bad(text[position:])
        self._text = text[position:]

    def _bad(self, span: str) -> Iterator[BadLine]:
        if span:
            yield from _bad_span(self._source, self._line_number, self._skip_reason, span)
