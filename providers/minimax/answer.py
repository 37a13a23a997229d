"""A ``/v1/music_generation`` answer read as it streams in, in bounded memory (pure).

With ``output_format: "hex"`` (MiniMax's default) the whole song travels inside the
JSON answer as one hex string, ``data.audio``: tens of megabytes of JSON for a WAV. And
the answer says whether it succeeded only in ``base_resp``, which may come after it.
``Splitter`` is fed the answer chunk by chunk and splits it in two:

* the audio: ``data.audio``'s hex digits, decoded as they come, handed back by ``feed``
  (the caller spools them to disk);
* the rest (the *skeleton*): every other byte, as sent, with ``data.audio`` left an empty
  string, at most ``SKELETON_LIMIT`` bytes; decoded as JSON once the answer is complete.

A ``data.audio`` that is not hex (a URL, ``output_format: "url"``) stays in the skeleton.
Only structure is tracked (strings, keys, nesting), enough to find ``data.audio``; the
skeleton's JSON decoder checks the rest. Inside a string the scanner jumps from quote to
backslash (``re``), so a large hex string costs a few C calls per chunk, not a Python
step per byte.

Usage::

    splitter = Splitter()
    for chunk in chunks:
        audio = splitter.feed(chunk)       # decoded bytes of data.audio (maybe b"")
    skeleton = splitter.close()             # bytes of JSON; MalformedAnswer if cut short
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SKELETON_LIMIT = 1 << 20  # bytes of the answer outside data.audio (a few hundred in practice)
KEY_LIMIT = 64  # bytes of an object key kept to compare (longer keys are not ours)
HEX = b"0123456789abcdefABCDEF"
AUDIO_PATH = (b"data", b"audio")

_SPECIAL = re.compile(rb'["\\]')
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN, _CLOSE = frozenset(b"{["), frozenset(b"}]")
_OBJECT, _COMMA = ord("{"), ord(",")


class MalformedAnswer(ValueError):
    """The answer is not the JSON it should be (cut short, bad hex, far too large)."""


@dataclass
class _Frame:
    kind: int  # ord("{") or ord("[")
    key: bytes | None  # this container's key in its parent object
    expect_key: bool = True  # objects: the next string is a key
    current: bytes | None = None  # objects: the key whose value comes now


class Splitter:
    """Feeds on the answer's bytes; see the module docstring."""

    def __init__(self, limit: int = SKELETON_LIMIT) -> None:
        self.limit = limit
        self.skeleton = bytearray()
        self.audio_bytes = 0  # decoded bytes of data.audio handed back so far
        self.hex = False  # data.audio was a hex string (decoded, not in the skeleton)
        self._stack: list[_Frame] = []
        self._mode = "out"  # out | key | value | audio_start | hex
        self._escape = False  # inside a string, after a backslash
        self._key = bytearray()
        self._carry = b""  # an odd hex digit waiting for its pair

    # --------------------------------------------------------------------- feeding

    def feed(self, chunk: bytes) -> bytes:
        """Take the next bytes of the answer; answer the audio bytes they held."""
        out: list[bytes] = []
        i, n = 0, len(chunk)
        while i < n:
            mode = self._mode
            if mode == "hex":
                end = chunk.find(b'"', i)
                out.append(self._hex(chunk[i : n if end < 0 else end]))
                if end < 0:
                    break
                if self._carry:
                    raise MalformedAnswer("data.audio has an odd number of hex digits")
                self._keep(b'"')
                self._mode = "out"
                i = end + 1
            elif mode == "audio_start":  # the first byte of data.audio says what it is
                self._mode = "hex" if chunk[i] in HEX else "value"
                self.hex = self._mode == "hex"
            elif mode in ("key", "value"):
                i = self._string(chunk, i)
            else:
                i = self._structure(chunk, i)
        return b"".join(out)

    def close(self) -> bytes:
        """The skeleton, once the whole answer was fed."""
        if self._mode != "out" or self._stack or not self.skeleton.strip():
            raise MalformedAnswer("the answer was cut short")
        return bytes(self.skeleton)

    # -------------------------------------------------------------------- scanning

    def _keep(self, data: bytes) -> None:
        if len(self.skeleton) + len(data) > self.limit:
            raise MalformedAnswer(f"more than {self.limit} bytes outside data.audio")
        self.skeleton += data

    def _hex(self, digits: bytes) -> bytes:
        if digits.translate(None, HEX):
            raise MalformedAnswer("data.audio is not a hex string")
        digits = self._carry + digits
        if len(digits) % 2:
            digits, self._carry = digits[:-1], digits[-1:]
        else:
            self._carry = b""
        decoded = bytes.fromhex(digits.decode("ascii"))
        self.audio_bytes += len(decoded)
        return decoded

    def _string(self, chunk: bytes, i: int) -> int:
        """Inside a string (key or value): up to its closing quote, or the chunk's end."""
        if self._escape:  # the byte after a backslash is never the end
            self._take(chunk[i : i + 1], chunk[i : i + 1])
            self._escape = False
            return i + 1
        found = _SPECIAL.search(chunk, i)
        if found is None:
            self._take(chunk[i:], chunk[i:])
            return len(chunk)
        j = found.start()
        if chunk[j] == _BACKSLASH:
            self._take(chunk[i : j + 1], chunk[i:j])
            self._escape = True
            return j + 1
        self._take(chunk[i : j + 1], chunk[i:j])
        if self._mode == "key":
            top = self._stack[-1]
            top.current, top.expect_key = bytes(self._key), False
        self._mode = "out"
        return j + 1

    def _take(self, raw: bytes, content: bytes) -> None:
        self._keep(raw)
        if self._mode == "key" and len(self._key) <= KEY_LIMIT:
            self._key += content

    def _structure(self, chunk: bytes, i: int) -> int:
        """Outside strings, one byte: quotes, brackets, commas."""
        b = chunk[i]
        self._keep(chunk[i : i + 1])
        top = self._stack[-1] if self._stack else None
        if b == _QUOTE:
            if top is not None and top.kind == _OBJECT and top.expect_key:
                self._mode = "key"
                self._key.clear()
            else:
                self._mode = "audio_start" if self._at_audio() else "value"
        elif b in _OPEN:
            parent = top.current if top is not None and top.kind == _OBJECT else None
            self._stack.append(_Frame(kind=b, key=parent))
        elif b in _CLOSE:
            if not self._stack:
                raise MalformedAnswer("unbalanced brackets")
            self._stack.pop()
        elif b == _COMMA and top is not None and top.kind == _OBJECT:
            top.expect_key, top.current = True, None
        return i + 1

    def _at_audio(self) -> bool:
        """A string value starts at ``data.audio`` of the top-level object."""
        stack = self._stack
        return (
            len(stack) == 2
            and stack[0].kind == _OBJECT
            and stack[1].kind == _OBJECT
            and (stack[1].key, stack[1].current) == AUDIO_PATH
        )
