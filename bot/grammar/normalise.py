"""Normalise raw WeChat message text before parsing: width, punctuation, mentions, quotes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["as_written", "normalise", "restore_cjk_punctuation", "scrub"]

# WeChat renders a reply that quotes a message as the quote, a line of spaced dashes, then the
# reply (some clients put the quote last); only the sender's own words are a command.
_DASH_LINE = r"[ \t\u3000]*(?:[-—－][ \t\u3000]*){3,}"
_QUOTE_FIRST = re.compile(r"^\s*「(?P<q>[^」]*)」\s*\n" + _DASH_LINE + r"(?:\n|$)")
_QUOTE_LAST = re.compile(r"\n" + _DASH_LINE + r"\n\s*「(?P<q>[^」]*)」\s*$")
_QUOTE_TRAILING = re.compile(r"\n\s*「(?P<q>[^」\n]*[:：][^」]*)」\s*$")
# The tag the bot puts on every notice it sends; a reply quoting a notice keeps it.
_NOTICE_TAG = re.compile(r"【(?P<urgent>紧急)?通知\s*#\s*(?P<id>[0-9]{1,9})】")
# A reply of one reading under a quote that asks for temperatures (体温, 测温, 體溫): 36.5,
# 36.5度 正常, 王明 36.6 (a name first, the way a list is answered).
_BARE_READING = re.compile(
    r"(?:[\u4e00-\u9fff]{2,4} ?)?[34][0-9](?:[.。][0-9])?\s*(?:度|℃|°C|°)?"
    r"(?: ?[,，]? ?(?:正常|体温正常|无异常|谢谢))?")
_ASKS_READING = re.compile("体温|测温|體溫|体溫|量温")
# Invisible characters that phones and WeChat sprinkle into text.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"\s+")
# What never belongs in a message, a name or stored text: NUL and other C0/C1 controls (except
# tab and line breaks; PostgreSQL rejects NUL in text), lone surrogates (not encodable), and
# bidi/zero-width controls (they reorder or hide what a reader sees, e.g. inside a number).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u00ad\u061c\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]")


def scrub(text: str) -> str:
    """Drop control, bidi and zero-width characters and lone surrogates (display names and
    texts go through this before anything reads or stores them)."""
    return _UNSAFE.sub("", text) if text else ""


def _drop_quote(text: str) -> tuple[str, str]:
    """Drop a WeChat quote block: (the replying text, the quoted text or '')."""
    for pattern in (_QUOTE_FIRST, _QUOTE_LAST, _QUOTE_TRAILING):
        m = pattern.search(text)
        if m is not None:
            return text[: m.start()] + text[m.end():], m.group("q")
    return text, ""


def _notice_tag(text: str) -> str:
    """The first notice tag in already folded text, in its canonical form ('' if none)."""
    m = _NOTICE_TAG.search(text)
    if m is None:
        return ""
    return f"【{m.group('urgent') or ''}通知#{int(m.group('id'))}】"


# Traditional characters (phones set to 繁体, Hong Kong and Taiwan keyboards) of the words
# commands and chat use, one for one, so the parser's form stays aligned with the kept one
# (which keeps them as written). Only characters that are never simplified ones themselves.
_TRADITIONAL = (
    "體溫發燒熱測東報積號碼電話來歸還記錄開門間區鄉縣買賣辦調違規醫請問題饋謝們個這麼嗎說從傳達"
    "車樓層戶務長員確認審統計復複數與單際營業鋪檢幫點時見過進場異齊備離觀龍廣灣蘇漢陽鄭陳劉張黃"
    "趙吳楊孫錢馬許閩貴陝華義烏給對應該現經濟氣聯係準錯嚴藥遞機紙燈壞殺鄰糾紛處聲帶裏裡邊頭歲兒"
    "後臺隻畢轉雖塊幾賬總衛護漲縮廈湧豐攝"
)
_SIMPLE = (
    "体温发烧热测东报积号码电话来归还记录开门间区乡县买卖办调违规医请问题馈谢们个这么吗说从传达"
    "车楼层户务长员确认审统计复复数与单际营业铺检帮点时见过进场异齐备离观龙广湾苏汉阳郑陈刘张黄"
    "赵吴杨孙钱马许闽贵陕华义乌给对应该现经济气联系准错严药递机纸灯坏杀邻纠纷处声带里里边头岁儿"
    "后台只毕转虽块几账总卫护涨缩厦涌丰摄"
)
_SIMPLIFIED = str.maketrans(_TRADITIONAL, _SIMPLE)

# Chinese punctuation a writer types; kept as typed when asked (keep_punctuation=True).
_PUNCTUATION = "，、：；！？（）"
_HIDE = {ord(c): chr(0xE000 + i) for i, c in enumerate(_PUNCTUATION)}
_SHOW = {ord(chr(0xE000 + i)): c for i, c in enumerate(_PUNCTUATION)}


def _fold(text: str, keep_punctuation: bool = False) -> str:
    """Half-width, visible characters only, single spaces."""
    text = _INVISIBLE.sub("", text)
    if keep_punctuation:
        # Each mark becomes one private-use character and back, so both forms align.
        text = unicodedata.normalize("NFKC", text.translate(_HIDE)).translate(_SHOW)
    else:
        # NFKC folds full-width letters, digits and ：，？ and turns WeChat's U+2005 into a space.
        text = unicodedata.normalize("NFKC", text).replace("、", ",").translate(_SIMPLIFIED)
    return _SPACES.sub(" ", text).strip()


def _strip_mentions(text: str, names: list[str]) -> str:
    """Strip leading and trailing @mentions of the bot, as often as they repeat."""
    changed = True
    while changed and text:
        changed = False
        for name in names:
            mention = "@" + name
            if text.startswith(mention):
                text = text[len(mention):].lstrip()
                changed = True
            if text.endswith(mention):
                text = text[: -len(mention)].rstrip()
                changed = True
    return text


def normalise(text: str, *, bot_names: Iterable[str] = (), keep_punctuation: bool = False) -> str:
    """Return text in the one form the parser reads (half-width, single spaces, no quote).

    keep_punctuation=True keeps the Chinese punctuation as typed, character for character in
    step with the parser's form, so free text can be taken back as written (see as_written).

    A reply that quotes a tagged notice (【通知#27】) keeps the tag at its end, so 收到 under a
    quoted notice reads 收到 【通知#27】 and acknowledges that notice.
    """
    if not text:
        return ""
    reply, quote = _drop_quote(scrub(text))
    text = _fold(reply, keep_punctuation)
    # The bot's names in the same form as the text (a 繁体 name is folded like the text).
    table = {} if keep_punctuation else _SIMPLIFIED
    names = sorted(
        {n for n in (_SPACES.sub(" ", unicodedata.normalize("NFKC", b)).strip().translate(table)
                     for b in bot_names if b) if n},
        key=len,
        reverse=True,
    )
    if names:
        text = _strip_mentions(text, names)
    text = text.strip()
    if quote and _BARE_READING.fullmatch(text) and _ASKS_READING.search(quote):
        # 36.5 under a quoted 大家报一下体温: the number answers the quote.
        text = f"体温 {text}"
    if text and quote and not _NOTICE_TAG.search(text):
        tag = _notice_tag(_fold(quote))
        if tag:
            text = f"{text} {tag}"
    return text


# NFKC folds Chinese punctuation to ASCII, which parsing needs; free text that other people
# will read (a notice, a feedback, a reason) gets it back where it stands beside Chinese.
_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_ASCII_TO_FULL = {",": "，", ":": "：", ";": "；", "!": "！", "?": "？"}
_CJK_PUNCT = re.compile(rf"(?<=[{_CJK}])[,:;!?]|[,:;!?](?=[{_CJK}])")


def restore_cjk_punctuation(text: str) -> str:
    """'消毒,并回复' -> '消毒，并回复'; ASCII punctuation between digits or Latin stays."""
    return _CJK_PUNCT.sub(lambda m: _ASCII_TO_FULL[m.group(0)], text)


def as_written(value: str, *, parsed: str, kept: str) -> str:
    """Free text the parser took from `parsed`, with the writer's own punctuation from `kept`
    (normalise(..., keep_punctuation=True) of the same message); '、' stays '、'."""
    if len(parsed) == len(kept):
        start = parsed.find(value)
        if start >= 0:
            value = kept[start:start + len(value)]
    return restore_cjk_punctuation(value)
