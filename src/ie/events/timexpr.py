"""Resolve Arabic time expressions to ISO dates relative to the article's date.

Covers what news about strikes uses: today/yesterday with a part of the day (فجر اليوم، الليلة
الماضية، ليلة أمس), the day before yesterday (أول أمس، أمس الأول), N days ago (منذ 3 أيام، قبل
يومين), weekdays (مساء يوم الاثنين: the most recent Monday on or before the article
date) and day + month (12 نوفمبر/تشرين الثاني, in the article's year, or the year before when that
would be after the article). Anything else (durations, "the past weeks") resolves to None.

dateparser would cover part of this, but its releases that fix Arabic need pytz ≥ 2024.2 while
label-studio pins pytz < 2023, so the two cannot share an environment.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from ie.events.canonical import fold

_WEEKDAYS = {  # Monday = 0, as date.weekday()
    "الاثنين": 0, "الإثنين": 0, "الثلاثاء": 1, "الأربعاء": 2, "الاربعاء": 2, "الخميس": 3,
    "الجمعة": 4, "السبت": 5, "الأحد": 6, "الاحد": 6,
}  # fmt: skip
_MONTHS = {
    "يناير": 1, "كانون الثاني": 1, "فبراير": 2, "شباط": 2, "مارس": 3, "آذار": 3, "أبريل": 4,
    "ابريل": 4, "نيسان": 4, "مايو": 5, "أيار": 5, "يونيو": 6, "حزيران": 6, "يوليو": 7, "تموز": 7,
    "أغسطس": 8, "آب": 8, "سبتمبر": 9, "أيلول": 9, "أكتوبر": 10, "تشرين الأول": 10, "نوفمبر": 11,
    "تشرين الثاني": 11, "ديسمبر": 12, "كانون الأول": 12,
}  # fmt: skip
_TODAY = ("اليوم", "هذا الصباح", "هذه الليلة", "الليلة")
_YESTERDAY = ("أمس", "الأمس", "البارحة", "الليلة الماضية", "ليلة أمس", "مساء أمس", "صباح أمس")
_BEFORE_YESTERDAY = ("أول أمس", "أول من أمس", "أمس الأول", "قبل أمس")
_DAYS_AGO = re.compile(r"(?:منذ|قبل)\s+(?:(\d{1,2})\s+(?:ايام|يوما|يوم)|(يومين))(?:$|\s)")
_INDIC = str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")


def _has(folded: str, words: tuple[str, ...] | dict[str, int]) -> str | None:
    for word in sorted(words, key=len, reverse=True):
        if re.search(rf"(?:^|\s|[وبلف]){re.escape(fold(word))}(?:$|\s)", folded):
            return word
    return None


def resolve_date(expression: str, article_date: date | None) -> date | None:
    """The calendar date an expression refers to, or None when it does not name one."""
    if article_date is None:
        return None
    text = fold(expression.translate(_INDIC))
    day_month = re.search(r"(\d{1,2})\s+(\S+(?:\s+\S+)?)", text)
    if day_month:
        day = int(day_month.group(1))
        for name, month in _MONTHS.items():
            if day_month.group(2).startswith(fold(name)):
                year_match = re.search(r"\b(19|20)\d\d\b", text)
                year = int(year_match.group()) if year_match else article_date.year
                try:
                    found = date(year, month, day)
                except ValueError:
                    return None
                if not year_match and found > article_date:
                    found = found.replace(year=year - 1)
                return found
    ago = _DAYS_AGO.search(text)
    if ago:
        return article_date - timedelta(days=int(ago.group(1)) if ago.group(1) else 2)
    if _has(text, _BEFORE_YESTERDAY):
        return article_date - timedelta(days=2)
    if _has(text, _YESTERDAY):
        return article_date - timedelta(days=1)
    weekday = _has(text, _WEEKDAYS)
    if weekday:
        return article_date - timedelta(days=(article_date.weekday() - _WEEKDAYS[weekday]) % 7)
    if _has(text, _TODAY):
        return article_date
    return None
