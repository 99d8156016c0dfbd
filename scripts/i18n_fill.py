"""Fill the English catalog's mechanical part; list what is left for a person to translate.

Our msgids are Chinese. Many already carry their English: "中文 / English" messages and "中文 english" verbose
names. This script copies that English into msgstr (capitalised for verbose names) when the placeholders
agree, and leaves everything else (pure Chinese, mixed forms) for a person to translate in the .po.

    python scripts/i18n_fill.py                 # fill pairs, report what is still empty or fuzzy
    python scripts/i18n_fill.py --list          # print untranslated msgids as JSON {msgid: ""}
    python scripts/i18n_fill.py --apply F.json  # merge hand translations {msgid: msgstr} into the .po

`make messages` runs makemessages, this script and compilemessages. Hand translations live in the .po:
makemessages keeps them. A msgstr written by hand is never overwritten by the script.

The parser handles what `makemessages` writes (no plurals or contexts are used here); it is also used by
tests/test_i18n.py to check the compiled .mo against the .po.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

PO_PATH = Path(__file__).resolve().parent.parent / "locale" / "en" / "LC_MESSAGES" / "django.po"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
PLACEHOLDER = re.compile(r"%\([^)]+\)[-#0 +]*\d*(?:\.\d*)?[sdifr]|%[-#0 +]*\d*(?:\.\d*)?[sdifr]|\{[A-Za-z_0-9]*\}")
WIDTH = 79


@dataclass
class Entry:
    comments: list[str] = field(default_factory=list)  # "#" lines other than the flags line
    flags: list[str] = field(default_factory=list)
    msgid: str = ""
    msgstr: str = ""
    msgid_lines: list[str] = field(default_factory=list)  # raw, kept verbatim when writing
    obsolete: bool = False

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags


def _unquote(text: str) -> str:
    body = text.strip()
    assert body.startswith('"') and body.endswith('"'), body
    body = body[1:-1]
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n") + '"'


def parse(text: str) -> list[Entry]:
    """Entries in file order; the header is the entry with msgid ""."""
    entries: list[Entry] = []
    current = Entry()
    section = None

    def flush():
        nonlocal current, section
        if current.msgid_lines or current.comments or current.flags:
            entries.append(current)
        current, section = Entry(), None

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        if line.startswith("#~"):
            current.obsolete = True
            current.comments.append(line)
            continue
        if line.startswith("#,"):
            current.flags = [f.strip() for f in line[2:].split(",") if f.strip()]
            continue
        if line.startswith("#"):
            if section is not None:  # a comment after a msgstr starts a new entry
                flush()
            current.comments.append(line)
            continue
        if line.startswith("msgid "):
            if section == "msgstr":
                flush()
            section = "msgid"
            current.msgid_lines = [line]
            current.msgid = _unquote(line[6:])
        elif line.startswith("msgstr "):
            section = "msgstr"
            current.msgstr = _unquote(line[7:])
        elif line.startswith('"'):
            if section == "msgid":
                current.msgid_lines.append(line)
                current.msgid += _unquote(line)
            elif section == "msgstr":
                current.msgstr += _unquote(line)
        else:
            raise ValueError(f"unexpected line in .po: {line!r}")
    flush()
    return entries


def _wrap(keyword: str, value: str) -> list[str]:
    single = f"{keyword} {_quote(value)}"
    if len(single) <= WIDTH and "\n" not in value[:-1]:
        return [single]
    lines = [f'{keyword} ""']
    # Break after spaces (and after \n) so each quoted line stays within the width, like msgmerge does.
    pieces = re.findall(r"[^ \n]*(?: +|\n|$)", value)
    chunk = ""
    for piece in pieces:
        if not piece:
            continue
        if chunk and len(_quote(chunk + piece)) > WIDTH:
            lines.append(_quote(chunk))
            chunk = ""
        chunk += piece
        if piece.endswith("\n"):
            lines.append(_quote(chunk))
            chunk = ""
    if chunk:
        lines.append(_quote(chunk))
    return lines


def serialise(entries: list[Entry]) -> str:
    blocks = []
    for entry in entries:
        if entry.obsolete:
            blocks.append("\n".join(entry.comments))
            continue
        # gettext's order: translator and reference comments, the flags, then the previous msgid ("#|"), which
        # only means something on a fuzzy entry (msgfmt refuses "#|" before "#,").
        lines = [c for c in entry.comments if not c.startswith("#|")]
        if entry.flags:
            lines.append("#, " + ", ".join(entry.flags))
        if entry.fuzzy:
            lines.extend(c for c in entry.comments if c.startswith("#|"))
        lines.extend(entry.msgid_lines)
        if entry.msgid == "":  # header: one field per line
            lines.append('msgstr ""')
            lines.extend(_quote(part) for part in entry.msgstr.splitlines(keepends=True))
        else:
            lines.extend(_wrap("msgstr", entry.msgstr))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def placeholders(text: str) -> set[str]:
    """The format placeholders in a text; a msgstr must use the same ones as its msgid.

    A set, not a count: a "中文 %(n)s / English %(n)s" msgid names each placeholder twice, its English once.
    (msgfmt --check-format, run by compilemessages, checks the python-format entries as well.)
    """
    found = set()
    for token in PLACEHOLDER.findall(text.replace("%%", "")):
        name = re.match(r"%\(([^)]+)\)", token)
        # Named: the name and conversion only (flags, width, precision may differ: "%(s).s" prints nothing).
        found.add(f"%({name.group(1)}){token[-1]}" if name else token)
    return found


SLASH = re.compile(r"(?:(?<=\s)|(?<=[）)]))/ ")


def pair_english(msgid: str) -> str | None:
    """The English half of a "中文 / English" msgid: after the first "/ " that follows the last Chinese character."""
    marks = list(CJK.finditer(msgid))
    if not marks:
        return None
    slash = SLASH.search(msgid, marks[-1].end() - 1)
    return msgid[slash.end() :].strip() if slash else None


def placeholder_problem(msgid: str, msgstr: str) -> str | None:
    """Why msgstr's placeholders do not fit msgid's, or None.

    A msgstr may only use the msgid's placeholders (any other is a KeyError at runtime). It must use all of
    them, except that a "中文 %(s)s / English %(s_en)s" pair needs only those of its English half.
    """
    got, allowed = placeholders(msgstr), placeholders(msgid)
    english = pair_english(msgid)
    needed = placeholders(english) if english is not None else allowed
    if not got <= allowed:
        return f"unknown placeholders {sorted(got - allowed)}"
    if not needed <= got:
        return f"missing placeholders {sorted(needed - got)}"
    return None


def english_of(msgid: str) -> str | None:
    """The English already in a msgid, or None when a person has to translate it."""
    if not CJK.search(msgid):
        return msgid  # already English (or symbols only)
    core = msgid.strip()
    last_cjk = max(m.end() for m in CJK.finditer(core))
    english = pair_english(core)
    if english is None:
        # "中文 english", "中文（说明）English" (verbose names, headings): Chinese first, then English to the end.
        # Mixed forms ("extension 或 reschedule", "演示账户：demo_rm ...") are left for a person.
        chinese, rest = core[:last_cjk], core[last_cjk:]
        if chinese.count("(") > chinese.count(")") and rest.startswith(")"):
            chinese, rest = chinese + ")", rest[1:]
        closed = chinese.endswith(("）", ")"))
        if not CJK.match(chinese) or re.search(r"[a-z]", chinese) or not re.match(
            r"\s*[A-Za-z]" if closed else r"\s+[A-Za-z(]", rest
        ):
            return None
        english = rest.strip()
        english = english[0].upper() + english[1:]
    if len(re.findall(r"[A-Za-z]", english)) < 2 or placeholders(english) != placeholders(msgid):
        return None
    if " / " in english:  # loanservice.text.in_language() would cut an English text at " / "
        return None
    if "%%" in msgid and "%" in english.replace("%%", "").replace("%(", "") and "%%" not in english:
        return None
    # Keep the msgid's surrounding whitespace: templates may rely on it.
    return msgid[: len(msgid) - len(msgid.lstrip())] + english + msgid[len(msgid.rstrip()) :]


def fill(entries: list[Entry]) -> tuple[int, list[Entry]]:
    """Fill empty (or fuzzy) msgstrs that carry their English; return (filled, still to do)."""
    filled, todo = 0, []
    for entry in entries:
        if entry.obsolete or entry.msgid == "":
            continue
        if entry.msgstr and not entry.fuzzy:
            continue
        english = english_of(entry.msgid)
        if english is not None:
            entry.msgstr = english
            entry.flags = [f for f in entry.flags if f != "fuzzy"]
            filled += 1
        else:
            todo.append(entry)
    return filled, todo


def apply(entries: list[Entry], translations: dict[str, str]) -> int:
    applied = 0
    for entry in entries:
        if entry.obsolete or entry.msgid not in translations or not translations[entry.msgid]:
            continue
        msgstr = translations[entry.msgid]
        problem = placeholder_problem(entry.msgid, msgstr)
        if problem:
            raise SystemExit(f"{problem}: {entry.msgid!r} -> {msgstr!r}")
        entry.msgstr = msgstr
        entry.flags = [f for f in entry.flags if f != "fuzzy"]
        applied += 1
    return applied


def chinese_of(msgid: str) -> str | None:
    """The Chinese of a "中文 english" label or note (the Chinese UI shows only it), or None: for a "中文 / English"
    pair (stored bilingual on purpose: notices, flash messages, which pages split by the reader's language), for
    pure Chinese, and for any text whose English part is not found at its end."""
    if not CJK.search(msgid) or pair_english(msgid) is not None:
        return None
    english = english_of(msgid)
    core = msgid.strip()
    if english is None:
        # Forms english_of leaves to a person, when they are still "Chinese, then English to the end" with no
        # Latin letter in the Chinese part ("12个月前 12m ago"); mixed ones ("extension 或 reschedule") are kept.
        last_cjk = max(m.end() for m in CJK.finditer(core))
        chinese, rest = core[:last_cjk], core[last_cjk:]
        if re.search(r"[A-Za-z]", chinese) or not re.fullmatch(r"\s+[A-Za-z0-9(][\x20-\x7e]*", rest) \
                or len(re.findall(r"[A-Za-z]", rest)) < 2:
            return None
    elif english.strip() == core:
        return None
    else:
        tail = english.strip()[1:]  # english_of capitalised the first letter
        cut = core.rfind(tail) if tail else -1
        chinese = core[: cut - 1].rstrip() if cut > 0 else ""
    if not chinese or placeholders(chinese) != placeholders(msgid):
        return None
    return msgid[: len(msgid) - len(msgid.lstrip())] + chinese + msgid[len(msgid.rstrip()) :]


def fill_chinese(entries: list[Entry]) -> int:
    """The zh_Hans catalog: every "中文 english" msgid gets its Chinese; everything else stays untranslated (gettext
    then shows the msgid itself, which is Chinese or a bilingual pair)."""
    filled = 0
    for entry in entries:
        if entry.obsolete or not entry.msgid:
            continue
        chinese = chinese_of(entry.msgid)
        entry.msgstr = chinese or ""
        entry.flags = [f for f in entry.flags if f != "fuzzy"]
        filled += bool(chinese)
    return filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--po", type=Path, default=PO_PATH)
    parser.add_argument("--list", action="store_true", help="print untranslated msgids as JSON")
    parser.add_argument("--apply", type=Path, help="JSON {msgid: msgstr} of hand translations to merge")
    parser.add_argument("--chinese", type=Path, metavar="PO", help="fill this zh_Hans catalog instead (see fill_chinese)")
    args = parser.parse_args(argv)

    if args.chinese:
        entries = parse(args.chinese.read_text(encoding="utf-8"))
        header = next(e for e in entries if e.msgid == "")
        header.flags = [f for f in header.flags if f != "fuzzy"]
        header.msgstr = re.sub(r"^Language: .*$", "Language: zh_Hans", header.msgstr, flags=re.M)
        filled = fill_chinese(entries)
        args.chinese.write_text(serialise(entries), encoding="utf-8")
        print(f"zh_Hans: {filled} labels shown in Chinese only", file=sys.stderr)
        return 0

    entries = parse(args.po.read_text(encoding="utf-8"))
    header = next(e for e in entries if e.msgid == "")
    header.flags = [f for f in header.flags if f != "fuzzy"]
    header.msgstr = re.sub(r"^Language: .*$", "Language: en", header.msgstr, flags=re.M)
    applied = apply(entries, json.loads(args.apply.read_text(encoding="utf-8"))) if args.apply else 0
    filled, todo = fill(entries)
    args.po.write_text(serialise(entries), encoding="utf-8")
    if args.list:
        json.dump({e.msgid: "" for e in todo}, sys.stdout, ensure_ascii=False, indent=1)
        print()
    total = sum(1 for e in entries if e.msgid and not e.obsolete)
    print(f"{total} msgids: {filled} filled from their English, {applied} applied, {len(todo)} left to translate",
          file=sys.stderr)
    for entry in todo if not args.list else []:
        print(f"  {'fuzzy ' if entry.fuzzy else ''}{entry.msgid!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
