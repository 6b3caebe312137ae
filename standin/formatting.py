"""Telegram's text formatting: parse modes, automatic entities and text normalisation.

The parsers follow the behaviour of Telegram's server (tdlib's ``parse_html``,
``parse_markdown_v2`` and ``parse_markdown``), including the error messages, so that a
bot that emits malformed markup is rejected here exactly as it would be in production.
Offsets in error messages are UTF-8 byte offsets (as Telegram reports them); entity
offsets and lengths are UTF-16 code units (as the Bot API defines them).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EntityParseError",
    "FormattedText",
    "auto_entities",
    "format_text",
    "utf16_len",
]

JsonDict = dict[str, Any]

_SPACES = frozenset(b" \t\r\n\x00\x0b")
_LT, _GT, _AMP, _SLASH, _EQ = 0x3C, 0x3E, 0x26, 0x2F, 0x3D
_NAME_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + ".-")

_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler",
        "tg-emoji", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip

_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}

# Sorting priority of entity types that start and end at the same place (tdlib's order).
_PRIORITY = {
    "blockquote": 0, "expandable_blockquote": 0, "pre": 11, "code": 20, "text_link": 49,
    "text_mention": 49, "bold": 90, "italic": 91, "underline": 92, "strikethrough": 93,
    "spoiler": 94, "custom_emoji": 99,
}  # fmt: skip

# Names tdlib uses for entity types in MarkdownV2 error messages.
_MDV2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "pre_code": "PreCode",
    "text_link": "TextUrl", "custom_emoji": "CustomEmoji", "blockquote": "BlockQuote",
}  # fmt: skip


class EntityParseError(ValueError):
    """Markup that Telegram refuses; the message is the part after "can't parse entities: "."""


@dataclass
class FormattedText:
    """Plain text plus Bot API ``MessageEntity`` dicts (UTF-16 offsets)."""

    text: str
    entities: list[JsonDict] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _utf16_step(byte: int) -> int:
    """UTF-16 units contributed by a UTF-8 byte (0 for continuation bytes)."""
    if byte & 0xC0 == 0x80:
        return 0
    return 2 if byte >= 0xF0 else 1


def _entity(kind: str, offset: int, length: int, **extra: Any) -> JsonDict:
    return {"type": kind, "offset": offset, "length": length, **extra}


def _sort_entities(entities: list[JsonDict]) -> list[JsonDict]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"], _PRIORITY.get(e["type"], 50)))


# --------------------------------------------------------------------------- links


_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_HOST_RE = re.compile(r"^[\w\-.]+(:\d+)?$")


def checked_link(url: str) -> str | None:
    """Normalise a link the way Telegram does for text links; ``None`` if it is refused."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    match = _SCHEME_RE.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme in ("tg", "ton", "mailto"):
        return url
    if not scheme:
        url = "http://" + url
    elif scheme not in ("http", "https", "ftp"):
        return None
    prefix, _, rest = url.partition("://")
    host_end = next((k for k, ch in enumerate(rest) if ch in "/?#"), len(rest))
    host = rest[:host_end].rsplit("@", 1)[-1]
    if not _HOST_RE.match(host) or (not scheme and "." not in host):
        return None
    if host_end == len(rest) or rest[host_end] != "/":
        rest = rest[:host_end] + "/" + rest[host_end:]
    return f"{prefix}://{rest}"


_TG_USER_RE = re.compile(r"^tg://user\?id=(\d+)$", re.IGNORECASE)


def _link_entity(
    offset: int, length: int, url: str, resolve_user: Callable[[int], JsonDict | None]
) -> JsonDict | None:
    """A ``text_link`` or ``text_mention`` entity for ``url``; ``None`` for refused links."""
    user_match = _TG_USER_RE.match(url.strip())
    if user_match:
        user = resolve_user(int(user_match.group(1)))
        if user is not None:
            return _entity("text_mention", offset, length, user=user)
    checked = checked_link(url)
    if checked is None:
        return None
    return _entity("text_link", offset, length, url=checked)


def _no_user(_user_id: int) -> JsonDict | None:
    return None


# --------------------------------------------------------------------------- HTML


class _Bytes:
    """UTF-8 bytes of the markup with NUL-terminated lookahead (like tdlib's C string)."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8")
        self.size = len(self.data)

    def at(self, index: int) -> int:
        return self.data[index] if index < self.size else 0


def _decode_html_entity(src: _Bytes, pos: int) -> tuple[int, int] | None:
    """Decode the character reference at ``pos`` ('&'); returns (code point, next position)."""
    end = pos + 1
    code = 0
    if src.at(end) == ord("#"):
        end += 1
        if src.at(end) == ord("x"):
            end += 1
            while src.at(end) and chr(src.at(end)) in string.hexdigits:
                code = code * 16 + int(chr(src.at(end)), 16)
                end += 1
        else:
            while ord("0") <= src.at(end) <= ord("9"):
                code = code * 10 + src.at(end) - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while chr(src.at(end)).isascii() and chr(src.at(end)).isalpha():
            end += 1
        name = src.data[pos + 1 : end]
        named = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}.get(name)
        if named is None:
            return None
        code = ord(named)
    if src.at(end) == ord(";"):
        end += 1
    return code, end


@dataclass
class _OpenTag:
    name: str
    argument: str
    offset16: int
    out_pos: int
    expandable: bool = False


class _HtmlParser:
    """Single-pass parser of Telegram's HTML subset."""

    def __init__(self, text: str, resolve_user: Callable[[int], JsonDict | None]) -> None:
        self.src = _Bytes(text)
        self.resolve_user = resolve_user
        self.out = bytearray()
        self.offset16 = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[JsonDict] = []
        self.has_surrogates = False

    def parse(self) -> FormattedText:
        i = 0
        src = self.src
        while i < src.size:
            byte = src.data[i]
            if byte == _AMP:
                decoded = _decode_html_entity(src, i)
                if decoded is not None:
                    code, i = decoded
                    self._append_code_point(code)
                    continue
            if byte != _LT:
                self.offset16 += _utf16_step(byte)
                self.out.append(byte)
                i += 1
                continue
            i = self._end_tag(i) if src.at(i + 1) == _SLASH else self._start_tag(i)
        if self.stack:
            raise EntityParseError(
                f"Can't find end tag corresponding to start tag {self.stack[-1].name}"
            )
        return FormattedText(self._result_text(), self._finish_entities())

    def _append_code_point(self, code: int) -> None:
        if 0xD800 <= code <= 0xDFFF:
            self.has_surrogates = True
        self.offset16 += 2 if code > 0xFFFF else 1
        self.out += chr(code).encode("utf-8", "surrogatepass")

    def _result_text(self) -> str:
        try:
            return self.out.decode("utf-8")
        except UnicodeDecodeError:
            raise EntityParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            ) from None

    def _skip_spaces(self, i: int) -> int:
        while self.src.at(i) and self.src.at(i) in _SPACES:
            i += 1
        return i

    def _start_tag(self, begin: int) -> int:
        src = self.src
        i = begin + 1
        while src.at(i) not in _SPACES and src.at(i) != _GT:
            i += 1
        if src.at(i) == 0:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
        tag = src.data[begin + 1 : i].decode("utf-8", "replace").lower()
        if tag not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
        opened = _OpenTag(tag, "", self.offset16, len(self.out))
        i = self._attributes(opened, begin, i)
        if tag == "span" and opened.argument != "spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {begin}'
            )
        self.stack.append(opened)
        return i + 1

    def _attributes(self, opened: _OpenTag, begin: int, i: int) -> int:
        """Parse the attributes of ``opened``; returns the position of the closing '>'."""
        src = self.src
        tag = opened.name
        while src.at(i) != _GT:
            i = self._skip_spaces(i)
            if src.at(i) == _GT:
                break
            name_begin = i
            while src.at(i) not in _SPACES and src.at(i) not in (_EQ, _GT):
                i += 1
            name = src.data[name_begin:i].decode("utf-8", "replace")
            if not name:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                )
            i = self._skip_spaces(i)
            if src.at(i) != _EQ:
                if tag == "blockquote" and name.lower() == "expandable" and src.at(i):
                    opened.expandable = True
                    continue
                raise EntityParseError(
                    "Expected equal sign in declaration of an attribute of the tag "
                    f'"{tag}" at byte offset {begin}'
                )
            i = self._skip_spaces(i + 1)
            if src.at(i) == 0:
                raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
            value, i = self._attribute_value(i)
            if src.at(i) == 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
            self._apply_attribute(opened, name, value)
        return i

    def _attribute_value(self, i: int) -> tuple[str, int]:
        src = self.src
        quote = src.at(i)
        if quote not in (ord("'"), ord('"')):
            token_begin = i
            while src.at(i) and (chr(src.at(i)) in _NAME_TOKEN_CHARS):
                i += 1
            if src.at(i) not in _SPACES and src.at(i) != _GT:
                raise EntityParseError(f"Unexpected end of name token at byte offset {token_begin}")
            return src.data[token_begin:i].decode("ascii").lower(), i
        i += 1
        value = bytearray()
        while src.at(i) != quote and src.at(i) != 0:
            if src.at(i) == _AMP:
                decoded = _decode_html_entity(src, i)
                if decoded is not None:
                    code, i = decoded
                    value += chr(code).encode("utf-8", "surrogatepass")
                    continue
            value.append(src.at(i))
            i += 1
        if src.at(i) == quote:
            i += 1
        return value.decode("utf-8", "replace"), i

    @staticmethod
    def _apply_attribute(opened: _OpenTag, name: str, value: str) -> None:
        tag = opened.name
        if tag == "a" and name == "href":
            opened.argument = value
        elif tag == "code" and name == "class" and value.startswith("language-"):
            opened.argument = value[len("language-") :]
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            opened.argument = value[len("tg-") :]
        elif tag == "tg-emoji" and name == "emoji-id":
            opened.argument = value

    def _end_tag(self, begin: int) -> int:
        src = self.src
        if not self.stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
        i = begin + 2
        while src.at(i) not in _SPACES and src.at(i) != _GT:
            i += 1
        name = src.data[begin + 2 : i].decode("utf-8", "replace").lower()
        i = self._skip_spaces(i)
        if src.at(i) != _GT:
            raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
        opened = self.stack[-1]
        if name and name != opened.name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {begin}, expected "</{opened.name}>", '
                f'found "</{name}>"'
            )
        if self.offset16 > opened.offset16:
            self._close_entity(opened)
        self.stack.pop()
        return i + 1

    def _close_entity(self, opened: _OpenTag) -> None:
        offset = opened.offset16
        length = self.offset16 - offset
        tag = opened.name
        last = self.entities[-1] if self.entities else None
        same_range = last is not None and (last["offset"], last["length"]) == (offset, length)
        if tag in _HTML_ENTITY_TYPES:
            self.entities.append(_entity(_HTML_ENTITY_TYPES[tag], offset, length))
        elif tag == "tg-emoji":
            if not opened.argument.isdigit() or int(opened.argument) == 0:
                raise EntityParseError("Invalid custom emoji identifier specified")
            self.entities.append(
                _entity("custom_emoji", offset, length, custom_emoji_id=opened.argument)
            )
        elif tag == "a":
            url = opened.argument or self.out[opened.out_pos :].decode("utf-8", "replace")
            link = _link_entity(offset, length, url, self.resolve_user)
            if link is not None:
                self.entities.append(link)
        elif tag == "pre":
            if same_range and last is not None and last["type"] == "code" and last.get("_lang"):
                last["type"] = "pre"
                last["language"] = last.pop("_lang")
            else:
                self.entities.append(_entity("pre", offset, length))
        elif tag == "code":
            if same_range and last is not None and last["type"] == "pre" and opened.argument:
                last["language"] = opened.argument
            else:
                self.entities.append(_entity("code", offset, length, _lang=opened.argument))
        else:  # blockquote
            kind = "expandable_blockquote" if opened.expandable else "blockquote"
            self.entities.append(_entity(kind, offset, length))

    def _finish_entities(self) -> list[JsonDict]:
        for entity in self.entities:
            entity.pop("_lang", None)
        return _sort_entities(self.entities)


def parse_html(
    text: str, resolve_user: Callable[[int], JsonDict | None] = _no_user
) -> FormattedText:
    """Parse Telegram HTML; raises :class:`EntityParseError` like Telegram does."""
    return _HtmlParser(text, resolve_user).parse()


# --------------------------------------------------------------------------- MarkdownV2


_MDV2_RESERVED = frozenset(b"_*[]()~`>#+-=|{}.!\n")


@dataclass
class _OpenMd:
    kind: str  # a key of _MDV2_NAMES
    argument: str
    offset16: int
    byte_offset: int
    out_pos: int


class _MarkdownV2Parser:
    """Single-pass parser of Telegram's MarkdownV2."""

    def __init__(self, text: str, resolve_user: Callable[[int], JsonDict | None]) -> None:
        self.src = _Bytes(text)
        self.resolve_user = resolve_user
        self.out = bytearray()
        self.offset16 = 0
        self.stack: list[_OpenMd] = []
        self.entities: list[JsonDict] = []
        self.have_blockquote = False

    def parse(self) -> FormattedText:
        src = self.src
        i = 0
        while i < src.size:
            byte = src.data[i]
            if byte == ord("\\") and 0 < src.at(i + 1) <= 126:
                self.out.append(src.at(i + 1))
                self.offset16 += 1
                i += 2
                continue
            if byte not in self._reserved():
                self.offset16 += _utf16_step(byte)
                self.out.append(byte)
                i += 1
                continue
            i = self._end(i) if self._is_end(i) else self._begin(i)
        self._close_final_blockquote()
        if self.stack:
            top = self.stack[-1]
            raise EntityParseError(
                f"Can't find end of {_MDV2_NAMES[top.kind]} entity at byte offset {top.byte_offset}"
            )
        return FormattedText(self.out.decode("utf-8", "replace"), _sort_entities(self.entities))

    def _reserved(self) -> frozenset[int]:
        if self.stack and self.stack[-1].kind in ("code", "pre", "pre_code"):
            return frozenset(b"`")
        return _MDV2_RESERVED

    def _is_end(self, i: int) -> bool:
        if not self.stack:
            return False
        src = self.src
        byte = src.at(i)
        if self.have_blockquote and byte == ord("\n") and src.at(i + 1) != _GT:
            return True
        kind = self.stack[-1].kind
        nxt = src.at(i + 1)
        return {
            "bold": byte == ord("*"),
            "italic": byte == ord("_") and nxt != ord("_"),
            "code": byte == ord("`"),
            "pre": byte == ord("`") and nxt == ord("`") and src.at(i + 2) == ord("`"),
            "pre_code": byte == ord("`") and nxt == ord("`") and src.at(i + 2) == ord("`"),
            "text_link": byte == ord("]"),
            "custom_emoji": byte == ord("]"),
            "underline": byte == ord("_") and nxt == ord("_"),
            "strikethrough": byte == ord("~"),
            "spoiler": byte == ord("|") and nxt == ord("|"),
            "blockquote": False,
        }[kind]

    @staticmethod
    def _reserved_error(byte: int) -> EntityParseError:
        return EntityParseError(
            f"Character '{chr(byte)}' is reserved and must be escaped with the preceding '\\'"
        )

    def _begin(self, i: int) -> int:
        src = self.src
        byte = src.at(i)
        start = i
        argument = ""
        if byte == ord("_"):
            kind = "underline" if src.at(i + 1) == ord("_") else "italic"
            i += 2 if kind == "underline" else 1
        elif byte == ord("*"):
            kind, i = "bold", i + 1
        elif byte == ord("~"):
            kind, i = "strikethrough", i + 1
        elif byte == ord("|"):
            if src.at(i + 1) != ord("|"):
                raise self._reserved_error(byte)
            kind, i = "spoiler", i + 2
        elif byte == ord("["):
            kind, i = "text_link", i + 1
        elif byte == ord("`"):
            kind, argument, i = self._begin_code(i)
        elif byte == ord("!"):
            if src.at(i + 1) != ord("["):
                raise self._reserved_error(byte)
            kind, i = "custom_emoji", i + 2
        elif byte == ord("\n"):
            return self._newline(i)
        elif byte == _GT and i == 0:
            kind, i = "blockquote", i + 1
            self.have_blockquote = True
        else:
            raise self._reserved_error(byte)
        self.stack.append(_OpenMd(kind, argument, self.offset16, start, len(self.out)))
        return i

    def _begin_code(self, i: int) -> tuple[str, str, int]:
        src = self.src
        if not (src.at(i + 1) == ord("`") and src.at(i + 2) == ord("`")):
            return "code", "", i + 1
        i += 3
        kind, language = "pre", ""
        end = i
        while src.at(end) not in _SPACES and src.at(end) != ord("`"):
            end += 1
        if end != i and end < src.size and src.at(end) != ord("`"):
            kind, language = "pre_code", src.data[i:end].decode("utf-8", "replace")
            i = end
        if src.at(i) in (ord("\n"), ord("\r")):
            pair = src.at(i + 1) in (ord("\n"), ord("\r")) and src.at(i) != src.at(i + 1)
            i += 2 if pair else 1
        return kind, language, i

    def _newline(self, i: int) -> int:
        start = i
        self.offset16 += 1
        self.out.append(ord("\n"))
        i += 1
        if self.src.at(i) == _GT:
            i += 1
            if not self.have_blockquote:
                self.have_blockquote = True
                self.stack.append(_OpenMd("blockquote", "", self.offset16, start, len(self.out)))
        return i

    def _end(self, i: int) -> int:
        src = self.src
        top = self.stack[-1]
        byte = src.at(i)
        if byte == ord("\n") and top.kind != "blockquote":
            raise EntityParseError(
                f"Can't find end of {_MDV2_NAMES[top.kind]} entity at byte offset {top.byte_offset}"
            )
        skip = self.offset16 == top.offset16
        extra: JsonDict = {}
        kind = top.kind
        if kind in ("underline", "spoiler"):
            i += 2
        elif kind in ("pre", "pre_code"):
            i += 3
        elif kind == "text_link":
            url, i = self._link_target(i, top)
            link = _link_entity(top.offset16, self.offset16 - top.offset16, url, self.resolve_user)
            skip = skip or link is None
            if link is not None:
                kind, extra = link["type"], {k: v for k, v in link.items() if k in ("url", "user")}
        elif kind == "custom_emoji":
            extra["custom_emoji_id"], i = self._emoji_target(i)
        elif kind == "blockquote":
            self.have_blockquote = False
            self.out.append(byte)
            self.offset16 += 1
            i += 1
        else:
            i += 1
        if not skip:
            self._add_md_entity(kind, top, extra)
        self.stack.pop()
        return i

    def _add_md_entity(self, kind: str, top: _OpenMd, extra: JsonDict) -> None:
        length = self.offset16 - top.offset16
        if length <= 0:
            return
        if kind == "pre_code":
            kind, extra = "pre", {"language": top.argument}
        self.entities.append(_entity(kind, top.offset16, length, **extra))

    def _read_parenthesised(self, i: int) -> tuple[str, int, int]:
        """Read ``(...)`` after ']' at ``i``; returns (content, begin, index of ')')."""
        src = self.src
        i += 2
        begin = i
        content = bytearray()
        while i < src.size and src.at(i) != ord(")"):
            if src.at(i) == ord("\\") and 0 < src.at(i + 1) <= 126:
                content.append(src.at(i + 1))
                i += 2
                continue
            content.append(src.at(i))
            i += 1
        return content.decode("utf-8", "replace"), begin, i

    def _link_target(self, i: int, top: _OpenMd) -> tuple[str, int]:
        if self.src.at(i + 1) != ord("("):
            return self.out[top.out_pos :].decode("utf-8", "replace"), i + 1
        url, begin, i = self._read_parenthesised(i)
        if self.src.at(i) != ord(")"):
            raise EntityParseError(f"Can't find end of a URL at byte offset {begin}")
        return url, i + 1

    def _emoji_target(self, i: int) -> tuple[str, int]:
        if self.src.at(i + 1) != ord("("):
            raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
        url, begin, i = self._read_parenthesised(i)
        if self.src.at(i) != ord(")"):
            raise EntityParseError(f"Can't find end of a custom emoji URL at byte offset {begin}")
        match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
        if match is None or int(match.group(1)) == 0:
            raise EntityParseError("Invalid custom emoji identifier specified")
        return match.group(1), i + 1

    def _close_final_blockquote(self) -> None:
        if self.have_blockquote and self.stack and self.stack[-1].kind == "blockquote":
            top = self.stack.pop()
            length = self.offset16 - top.offset16
            if length:
                self.entities.append(_entity("blockquote", top.offset16, length))
            self.have_blockquote = False


def parse_markdown_v2(
    text: str, resolve_user: Callable[[int], JsonDict | None] = _no_user
) -> FormattedText:
    """Parse Telegram MarkdownV2; raises :class:`EntityParseError` like Telegram does."""
    return _MarkdownV2Parser(text, resolve_user).parse()


# --------------------------------------------------------------------------- legacy Markdown


def parse_markdown(
    text: str, resolve_user: Callable[[int], JsonDict | None] = _no_user
) -> FormattedText:
    """Parse Telegram's legacy ``Markdown`` mode."""
    src = _Bytes(text)
    out = bytearray()
    entities: list[JsonDict] = []
    offset16 = 0
    i = 0
    while i < src.size:
        byte = src.data[i]
        if byte == ord("\\") and src.at(i + 1) in b"_*`[":
            out.append(src.at(i + 1))
            offset16 += 1
            i += 2
            continue
        if byte not in b"_*`[":
            offset16 += _utf16_step(byte)
            out.append(byte)
            i += 1
            continue
        begin = i
        end_char = ord("]") if byte == ord("[") else byte
        i += 1
        is_pre = False
        language = ""
        if byte == ord("`") and src.at(i) == ord("`") and src.at(i + 1) == ord("`"):
            is_pre = True
            i += 2
            end = i
            while src.at(end) not in _SPACES and src.at(end) != ord("`"):
                end += 1
            if end != i and end < src.size and src.at(end) != ord("`"):
                language = src.data[i:end].decode("utf-8", "replace")
                i = end
            if src.at(i) in (ord("\n"), ord("\r")):
                pair = src.at(i + 1) in (ord("\n"), ord("\r")) and src.at(i) != src.at(i + 1)
                i += 2 if pair else 1
        start16 = offset16
        while i < src.size and (
            src.at(i) != end_char
            or (is_pre and not (src.at(i + 1) == ord("`") and src.at(i + 2) == ord("`")))
        ):
            offset16 += _utf16_step(src.at(i))
            out.append(src.at(i))
            i += 1
        if i == src.size:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {begin}")
        length = offset16 - start16
        if byte == ord("[") and src.at(i + 1) == ord("("):
            url_begin = i + 2
            i = url_begin
            while i < src.size and src.at(i) != ord(")"):
                i += 1
            url = src.data[url_begin:i].decode("utf-8", "replace")
        elif byte == ord("["):
            url = src.data[begin + 1 : i].decode("utf-8", "replace")
        else:
            url = ""
        if length:
            entity = _legacy_entity(byte, is_pre, language, start16, length, url, resolve_user)
            if entity is not None:
                entities.append(entity)
        i += 3 if is_pre else 1
    return FormattedText(out.decode("utf-8", "replace"), _sort_entities(entities))


def _legacy_entity(
    byte: int,
    is_pre: bool,
    language: str,
    offset: int,
    length: int,
    url: str,
    resolve_user: Callable[[int], JsonDict | None],
) -> JsonDict | None:
    if byte == ord("_"):
        return _entity("italic", offset, length)
    if byte == ord("*"):
        return _entity("bold", offset, length)
    if byte == ord("["):
        return _link_entity(offset, length, url, resolve_user)
    if is_pre:
        extra = {"language": language} if language else {}
        return _entity("pre", offset, length, **extra)
    return _entity("code", offset, length)


# --------------------------------------------------------------------------- normalisation


def _normalise(formatted: FormattedText) -> FormattedText:
    """Apply Telegram's clean-up: control characters, '\\r', trimming, blank entities."""
    chars: list[str] = []
    index_map = [0]  # UTF-16 offset in the input -> UTF-16 offset in the output
    new16 = 0
    for ch in formatted.text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if ch != "\r":
            chars.append(" " if ord(ch) < 32 and ch != "\n" else ch)
            new16 += width
        index_map.extend([new16] * width)
    text = "".join(chars)
    entities = []
    for entity in formatted.entities:
        start = index_map[entity["offset"]]
        end = index_map[min(entity["offset"] + entity["length"], len(index_map) - 1)]
        entities.append({**entity, "offset": start, "length": end - start})
    return _trim(text, entities)


def _trim(text: str, entities: list[JsonDict]) -> FormattedText:
    stripped_right = text.rstrip(" \n")
    end16 = utf16_len(stripped_right)
    first_entity = min((e["offset"] for e in entities), default=end16)
    lead = len(stripped_right) - len(stripped_right.lstrip(" \n"))
    lead16 = min(lead, first_entity)  # leading blanks are ASCII: chars == UTF-16 units
    result_text = stripped_right[lead16:]
    kept = []
    for entity in entities:
        start = min(entity["offset"], end16)
        end = min(entity["offset"] + entity["length"], end16)
        fixed = {**entity, "offset": start - lead16, "length": end - start}
        if fixed["length"] > 0 and _entity_text(result_text, fixed).strip():
            kept.append(fixed)
    return FormattedText(result_text, kept)


def _entity_text(text: str, entity: JsonDict) -> str:
    encoded = text.encode("utf-16-le")
    start = entity["offset"] * 2
    return encoded[start : start + entity["length"] * 2].decode("utf-16-le", "replace")


# --------------------------------------------------------------------------- automatic entities


def _is_word_char(ch: str) -> bool:
    return ch == "_" or unicodedata.category(ch)[0] in ("L", "N")


_COMMAND_RE = re.compile(r"/([a-zA-Z0-9_]{1,64})(@[a-zA-Z0-9_]{3,32})?")
_MENTION_RE = re.compile(r"@([a-zA-Z0-9_]{2,32})")
_HASHTAG_RE = re.compile(r"#([\w]{1,256})")
_URL_RE = re.compile(r"\bhttps?://[^\s<>\"']+", re.IGNORECASE)


def _bounded(text: str, start: int, end: int, extra: str = "") -> bool:
    """True when the match is not glued to word characters (or ``extra``) on either side."""
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    glued_before = bool(before) and (_is_word_char(before) or before in extra)
    glued_after = bool(after) and (_is_word_char(after) or after in extra)
    return not (glued_before or glued_after)


def _span_entity(text: str, kind: str, start: int, end: int) -> JsonDict:
    return _entity(kind, utf16_len(text[:start]), utf16_len(text[start:end]))


def _commands(text: str) -> list[JsonDict]:
    found = []
    for match in _COMMAND_RE.finditer(text):
        if _bounded(text, match.start(), match.end(), "/<>"):
            found.append(_span_entity(text, "bot_command", match.start(), match.end()))
    return found


def _mentions(text: str) -> list[JsonDict]:
    return [
        _span_entity(text, "mention", m.start(), m.end())
        for m in _MENTION_RE.finditer(text)
        if _bounded(text, m.start(), m.end())
    ]


def _hashtags(text: str) -> list[JsonDict]:
    found = []
    for match in _HASHTAG_RE.finditer(text):
        start, end = match.start(), match.end()
        before = text[start - 1] if start else ""
        if before and _is_word_char(before):
            continue
        if end < len(text) and text[end] == "#":
            continue
        if any(unicodedata.category(ch)[0] == "L" for ch in match.group(1)):
            found.append(_span_entity(text, "hashtag", start, end))
    return found


def _urls(text: str) -> list[JsonDict]:
    found = []
    for match in _URL_RE.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")
        found.append(_span_entity(text, "url", match.start(), match.start() + len(url)))
    return found


def _overlaps(entity: JsonDict, others: list[JsonDict]) -> bool:
    start, end = entity["offset"], entity["offset"] + entity["length"]
    return any(o["offset"] < end and start < o["offset"] + o["length"] for o in others)


def auto_entities(text: str, existing: list[JsonDict] | None = None) -> list[JsonDict]:
    """Entities Telegram detects by itself: bot commands, mentions, hashtags and URLs.

    Detected entities overlapping a code, pre or link entity of ``existing`` are skipped.
    """
    blocking = [
        e for e in existing or [] if e["type"] in ("code", "pre", "text_link", "text_mention")
    ]
    found = _commands(text) + _mentions(text) + _hashtags(text) + _urls(text)
    accepted: list[JsonDict] = []
    for entity in sorted(found, key=lambda e: e["offset"]):
        if not _overlaps(entity, blocking + accepted):
            accepted.append(entity)
    return accepted


# --------------------------------------------------------------------------- entry point


_PARSERS: dict[str, Callable[[str, Callable[[int], JsonDict | None]], FormattedText]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


def format_text(
    text: str,
    parse_mode: str | None = None,
    entities: list[JsonDict] | None = None,
    resolve_user: Callable[[int], JsonDict | None] = _no_user,
) -> FormattedText:
    """Turn what a bot sent (text + parse_mode or explicit entities) into a message text.

    Raises:
        EntityParseError: the markup is malformed (Telegram: "can't parse entities").
        ValueError: ``parse_mode`` is unknown (Telegram: "unsupported parse_mode").
    """
    if parse_mode:
        parser = _PARSERS.get(parse_mode.lower())
        if parser is None:
            raise ValueError(f"unsupported parse_mode {parse_mode!r}")
        parsed = parser(text, resolve_user)
    else:
        parsed = FormattedText(text, _sort_entities([dict(e) for e in entities or []]))
    normalised = _normalise(parsed)
    detected = auto_entities(normalised.text, normalised.entities)
    return FormattedText(normalised.text, _sort_entities(normalised.entities + detected))
