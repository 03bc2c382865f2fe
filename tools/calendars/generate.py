#!/usr/bin/env python3
"""Generate finql's trading-calendar data from exchange_calendars.

finql needs each market's sessions, holidays, early closes and lunch breaks for every day it may
be asked about. It takes them from `exchange_calendars` (the maintained calendar library the
field uses; https://github.com/gerrymanoim/exchange_calendars), pinned in requirements.txt, and
ships them as small text files the server embeds (`src/market/calendar/data/`). The server has
no runtime Python: this script runs only when the data is regenerated.

    python3 -m venv /tmp/xcal
    /tmp/xcal/bin/pip install -r tools/calendars/requirements.txt
    /tmp/xcal/bin/python tools/calendars/generate.py

Output, for every market finql lists (US = XNYS, HK = XHKG, CN = XSHG, JP = XTKS, GB = XLON,
DE = XETR), from 2000-01-01 through 2030-12-31:

- `<mic>.txt`: the regular hours by era (from the library's open/close/break times, e.g. HKEX's
  09:30 open from 2011-03-07, TSE's 15:30 close from 2024-11-05), then every exception to them:
  weekdays without a session (`closed`) and sessions whose hours differ from the era's (`hours`:
  early closes, late opens, half-days without an afternoon). Names come from the library's
  holiday rules where it has them.
- `summary.txt`: what the Rust tests compare the parsed data against, computed from the
  library's own session table (not from the compressed files): per market and year the number
  of sessions and of trading minutes, and a sample of sessions as UTC instants.

Corrections. Where the library's history of regular hours is known to be wrong and the
exchange's own record says otherwise, `CORRECTIONS` replaces those hours (never holidays), each
with its source, named in the file beside the eras. Today one: HKEX's lunch
break before 5 March 2012 (the library keeps 12:00-13:00 throughout).

Projected data. exchange_calendars records XSHG (Shanghai) holidays only through 2026: China's
State Council announces each year's holiday arrangement in the autumn before. For 2027-2030 the
CN closures are projected by rule (`project_cn_closures`, documented there) from the library's
lunisolar dates, the file says `published-through 2026-12-31`, and the server reports days after
it as provisional. The rule is checked against the published 2024-2026 closures before anything
is written: if the State Council changes its pattern, regeneration fails loudly here.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import sys

import exchange_calendars as xcals
import exchange_calendars.lunisolar_holidays as lunisolar
import pandas as pd

LIBRARY_VERSION = "4.13.2"
FIRST = dt.date(2000, 1, 1)
LAST = dt.date(2030, 12, 31)
OUT = pathlib.Path(__file__).resolve().parents[2] / "src" / "market" / "calendar" / "data"

# finql region, MIC, exchange name, last year the library publishes (None: all of it).
MARKETS = [
    ("US", "XNYS", "New York Stock Exchange", None),
    ("HK", "XHKG", "Hong Kong Exchanges and Clearing", None),
    ("CN", "XSHG", "Shanghai Stock Exchange", 2026),
    ("JP", "XTKS", "Tokyo Stock Exchange", None),
    ("GB", "XLON", "London Stock Exchange", None),
    ("DE", "XETR", "Xetra (Deutsche Boerse)", None),
]

# Regular hours the library has wrong: (MIC, first day, last day, the library's hours, the
# exchange's, source). Applied to the regular (not half-day) sessions in the span and to the eras.
CORRECTIONS = [
    (
        "XHKG", dt.date(2000, 1, 1), dt.date(2011, 3, 6), "10:00-12:00,13:00-16:00", "10:00-12:30,14:30-16:00",
        "HKEX news release 23 Nov 2010 (hours before 7 March 2011)",
    ),
    (
        "XHKG", dt.date(2011, 3, 7), dt.date(2012, 3, 4), "09:30-12:00,13:00-16:00", "09:30-12:00,13:30-16:00",
        "HKEX news releases 23 Nov 2010 and 1 Mar 2012 (phase one; phase two from 5 March 2012)",
    ),
]

WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

# One session in `SAMPLE_STRIDE` goes into summary.txt as UTC instants (prime, so the sample
# drifts through weekdays and months), plus every non-regular session of these years.
SAMPLE_STRIDE = 211
SAMPLE_SPECIAL_YEARS = (2025, 2026)


def hhmm(t: dt.time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def spans(spans_: list[tuple[dt.time, dt.time]]) -> str:
    return ",".join(f"{hhmm(a)}-{hhmm(b)}" for a, b in spans_)


def eras(cal) -> list[tuple[dt.date, list[tuple[dt.time, dt.time]]]]:
    """The regular hours by era, from the library's (start date, time) definitions."""

    def at(times, day):
        if times is None:
            return None
        current = None
        for start, time in times:
            if start is None or start.date() <= day:
                current = time
        return current

    starts = {FIRST}
    for times in (cal.open_times, cal.close_times, cal.break_start_times, cal.break_end_times):
        for start, _ in times or ():
            if start is not None and FIRST < start.date() <= LAST:
                starts.add(start.date())
    out = []
    for start in sorted(starts):
        open_, close = at(cal.open_times, start), at(cal.close_times, start)
        break_start, break_end = at(cal.break_start_times, start), at(cal.break_end_times, start)
        if break_start is not None and break_end is not None:
            out.append((start, [(open_, break_start), (break_end, close)]))
        else:
            out.append((start, [(open_, close)]))
    return out


def parse_spans(text: str) -> list[tuple[dt.time, dt.time]]:
    out = []
    for span in text.split(","):
        a, b = span.split("-")
        out.append((dt.time.fromisoformat(a), dt.time.fromisoformat(b)))
    return out


def correct(mic, tz, eras_, sessions):
    """Applies `CORRECTIONS` to the eras and (in place) to the sessions; returns the eras."""
    corrections = [c for c in CORRECTIONS if c[0] == mic]
    if not corrections:
        return eras_
    starts = {start for start, _ in eras_}
    for _, first, last, *_ in corrections:
        starts |= {first, last + dt.timedelta(days=1)}
    corrected_eras = []
    for start in sorted(starts):
        hours = era_on(eras_, start)
        for _, first, last, library, actual, _ in corrections:
            if first <= start <= last:
                if spans(hours) != library:
                    raise SystemExit(f"{mic} {start}: the library's hours are {spans(hours)}, not {library}")
                hours = parse_spans(actual)
        if not corrected_eras or corrected_eras[-1][1] != hours:
            corrected_eras.append((start, hours))
    for day, (local, _) in list(sessions.items()):
        for _, first, last, library, actual, _ in corrections:
            if first <= day <= last and spans(local) == library:
                local = parse_spans(actual)
                utc = [
                    tuple(pd.Timestamp.combine(day, t).tz_localize(tz).tz_convert("UTC") for t in span)
                    for span in local
                ]
                sessions[day] = (local, utc)
    return corrected_eras


def era_on(eras_, day):
    current = eras_[0][1]
    for start, hours in eras_:
        if start <= day:
            current = hours
    return current


def holiday_names(cal, start, end) -> dict[dt.date, str]:
    """Names of closures and special sessions, where the library's rules have them."""
    names: dict[dt.date, list[str]] = {}
    calendars = [cal.regular_holidays] + [h for _, h in cal.special_closes] + [h for _, h in cal.special_opens]
    for holidays in calendars:
        if holidays is None:
            continue
        for day, name in holidays.holidays(start, end, return_name=True).items():
            names.setdefault(day.date(), [])
            if name not in names[day.date()]:
                names[day.date()].append(name)
    return {day: " / ".join(sorted(n)) for day, n in names.items()}


def library_sessions(cal, tz):
    """Each session's local date and its spans, both local (for the file) and UTC (for the summary)."""
    out = {}
    for session in cal.sessions:
        day = session.date()
        if not (FIRST <= day <= LAST):
            continue
        open_, close = cal.session_open(session), cal.session_close(session)
        break_start, break_end = cal.session_break_start(session), cal.session_break_end(session)
        utc = [(open_, break_start), (break_end, close)] if not pd.isna(break_start) else [(open_, close)]
        local = [(a.tz_convert(tz).time(), b.tz_convert(tz).time()) for a, b in utc]
        out[day] = (local, utc)
    return out


# --- China: the projection -------------------------------------------------------------------


def one_day_festival(day: dt.date) -> list[dt.date]:
    """The weekdays closed for a one-day statutory holiday, by the weekday it falls on.

    The State Council joins a one-day holiday to a weekend into a three-day break (with a
    make-up working weekend day when it takes a weekday): Monday -> Sat-Mon; Tuesday -> Sat-Tue
    (Monday bridged); Wednesday -> the day alone; Thursday -> Thu-Sun (Friday bridged);
    Friday -> Fri-Sun; Saturday or Sunday -> the following Monday off. Seen in the published
    data: 2024-01-01 (Mon), 2024-09-17 (Tue), 2025-01-01 (Wed), 2024-04-04 and 2026-01-01 (Thu),
    2025-04-04 and 2026-06-19 (Fri), 2025-05-31 (Sat), 2026-04-05 (Sun).
    """
    weekday = day.weekday()
    if weekday == 0:
        return [day]
    if weekday == 1:
        return [day - dt.timedelta(days=1), day]
    if weekday == 2:
        return [day]
    if weekday == 3:
        return [day, day + dt.timedelta(days=1)]
    if weekday == 4:
        return [day]
    return [day + dt.timedelta(days=7 - weekday)]


def weekdays(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1) if (first + dt.timedelta(days=n)).weekday() < 5]


def project_cn_closures(year: int) -> dict[dt.date, str]:
    """SSE/SZSE full-day closures of `year` by the State Council's current pattern.

    The exchanges close on the weekdays of each public-holiday break (they never trade on
    weekends, make-up working days included). The breaks, as arranged for 2025 and 2026:

    - New Year's Day (1 statutory day): the one-day rule (`one_day_festival`).
    - Spring Festival (4 statutory days from Lunar New Year's Eve, since 2025): the six weekdays
      from the Eve on (the Monday after, when the Eve falls on a weekend). 2025: 28 Jan-4 Feb;
      2026: 16-23 Feb.
    - Qingming, Dragon Boat (1 day each): the one-day rule on the library's lunisolar dates.
    - Labour Day (1 and 2 May since 2025): the latest five-day break that holds 1-2 May and a
      whole weekend. 2025 (Thu) and 2026 (Fri): 1-5 May.
    - National Day (1-3 October): 1-7 October; with the Mid-Autumn Festival on 1-8 October the
      break is 1-8 October (2025), on 29 or 30 September it runs from the festival to 6 October;
      otherwise the Mid-Autumn Festival takes the one-day rule (2026: 25 September, Friday).
    """
    closures: dict[dt.date, str] = {}

    def add(days, name):
        for day in days:
            if day.weekday() < 5:
                closures.setdefault(day, name)

    add(one_day_festival(dt.date(year, 1, 1)), "New Year's Day")

    (new_year,) = [d.date() for d in lunisolar.chinese_lunar_new_year_dates if d.year == year]
    eve = new_year - dt.timedelta(days=1)
    while eve.weekday() >= 5:
        eve += dt.timedelta(days=1)
    spring = []
    day = eve
    while len(spring) < 6:
        if day.weekday() < 5:
            spring.append(day)
        day += dt.timedelta(days=1)
    add(spring, "Spring Festival")

    (qingming,) = [d.date() for d in lunisolar.qingming_festival_dates if d.year == year]
    add(one_day_festival(qingming), "Qingming Festival")

    may1, may2 = dt.date(year, 5, 1), dt.date(year, 5, 2)
    for start in (may1 - dt.timedelta(days=n) for n in range(0, 4)):
        span = [start + dt.timedelta(days=n) for n in range(5)]
        if may2 in span and any(d.weekday() == 5 for d in span) and any(d.weekday() == 6 for d in span):
            add(span, "Labour Day")
            break
    else:
        raise SystemExit(f"no Labour Day break found for {year}")

    (dragon_boat,) = [d.date() for d in lunisolar.dragon_boat_festival_dates if d.year == year]
    add(one_day_festival(dragon_boat), "Dragon Boat Festival")

    (mid_autumn,) = [d.date() for d in lunisolar.mid_autumn_festival_dates if d.year == year]
    october1 = dt.date(year, 10, 1)
    if october1 <= mid_autumn <= dt.date(year, 10, 8):
        add([october1 + dt.timedelta(days=n) for n in range(8)], "National Day / Mid-Autumn Festival")
    elif mid_autumn in (dt.date(year, 9, 29), dt.date(year, 9, 30)):
        add([mid_autumn + dt.timedelta(days=n) for n in range((dt.date(year, 10, 6) - mid_autumn).days + 1)],
            "Mid-Autumn Festival / National Day")
    else:
        add(one_day_festival(mid_autumn), "Mid-Autumn Festival")
        add([october1 + dt.timedelta(days=n) for n in range(7)], "National Day")
    return closures


def check_cn_projection(published_closed: set[dt.date]) -> None:
    """The rule must reproduce the published closures of the years it was derived from."""
    for year in (2024, 2025, 2026):
        projected = {d for d in project_cn_closures(year) if d.year == year}
        published = {d for d in published_closed if d.year == year}
        if projected != published:
            raise SystemExit(
                f"the CN projection rule no longer matches the published {year} closures:\n"
                f"  only projected: {sorted(projected - published)}\n"
                f"  only published: {sorted(published - projected)}\n"
                "update project_cn_closures to the State Council's current pattern"
            )


# --- Output ----------------------------------------------------------------------------------


def generate(region, mic, exchange, published_year):
    end = dt.date(published_year, 12, 31) if published_year else LAST
    cal = xcals.get_calendar(mic, start=FIRST.isoformat(), end=end.isoformat())
    tz = str(cal.tz)
    eras_ = eras(cal)
    names = holiday_names(cal, pd.Timestamp(FIRST), pd.Timestamp(end))
    sessions = library_sessions(cal, cal.tz)
    eras_ = correct(mic, cal.tz, eras_, sessions)
    weekmask = [c == "1" for c in cal.weekmask]

    regular_days = [FIRST + dt.timedelta(days=n) for n in range((end - FIRST).days + 1)]
    closed = {d for d in regular_days if weekmask[d.weekday()] and d not in sessions}
    projected_closed: dict[dt.date, str] = {}
    if published_year:
        check_cn_projection(closed)
        for year in range(published_year + 1, LAST.year + 1):
            projected_closed.update(project_cn_closures(year))
        # A projected closure may fall in the last published year (e.g. 31 December bridged
        # to a Tuesday 1 January): the published data wins there.
        projected_closed = {d: n for d, n in projected_closed.items() if end < d <= LAST}

    lines = [
        f"# finql trading calendar for region {region}: {mic} ({exchange}).",
        f"# Generated by tools/calendars/generate.py from exchange_calendars {LIBRARY_VERSION};",
        "# do not edit by hand: change the generator and regenerate.",
        "#",
        "# One directive a line; times are wall-clock times in the zone below, sessions [open, close).",
        "#   coverage FIRST LAST          the days this file describes",
        "#   published-through DATE       later days are projected by rule, not published",
        "#   weekdays DAY...              the days of the week with regular sessions",
        "#   era DATE SESSIONS            the regular sessions from DATE on",
        "#   closed DATE [NAME]           no session on a regular weekday",
        "#   hours DATE SESSIONS [NAME]   sessions other than the era's (early close, half-day, ...)",
        f"region {region} {mic}",
        f"timezone {tz}",
        f"coverage {FIRST} {LAST}",
        f"published-through {end}",
        "weekdays " + " ".join(n for n, on in zip(WEEKDAY_NAMES, weekmask) if on),
    ]
    for start, hours in eras_:
        lines.append(f"era {start} {spans(hours)}")
    for _, first, last, library, actual, source in (c for c in CORRECTIONS if c[0] == mic):
        lines.append(f"# Corrected: {first} to {last}, {actual} where exchange_calendars has {library}; {source}.")
    lines.append("# Exceptions published by the exchange (as exchange_calendars records them).")
    for day in sorted(closed | set(sessions)):
        name = f" {names[day]}" if day in names else ""
        if day in closed:
            lines.append(f"closed {day}{name}")
        else:
            local, _ = sessions[day]
            if not weekmask[day.weekday()] or local != era_on(eras_, day):
                lines.append(f"hours {day} {spans(local)}{name}")
    if projected_closed:
        lines.append(
            f"# Projected by rule: {end + dt.timedelta(days=1)} to {LAST}, not yet published by the exchange"
        )
        lines.append("# (tools/calendars/generate.py, project_cn_closures).")
        for day in sorted(projected_closed):
            lines.append(f"closed {day} {projected_closed[day]}")
    (OUT / f"{mic.lower()}.txt").write_text("\n".join(lines) + "\n")

    # The summary: published years straight from the library's session table.
    summary = []
    by_year: dict[int, list[int]] = {}
    for day, (_, utc) in sessions.items():
        count = by_year.setdefault(day.year, [0, 0])
        count[0] += 1
        count[1] += sum(int((b - a).total_seconds()) // 60 for a, b in utc)
    if published_year:
        # Projected years: the projection over the last era's hours, weekdays only.
        for day in (FIRST + dt.timedelta(days=n) for n in range((LAST - FIRST).days + 1)):
            if end < day and weekmask[day.weekday()] and day not in projected_closed:
                count = by_year.setdefault(day.year, [0, 0])
                count[0] += 1
                count[1] += sum(
                    (b.hour * 60 + b.minute) - (a.hour * 60 + a.minute) for a, b in era_on(eras_, day)
                )
    for year in sorted(by_year):
        kind = "projected" if year > end.year else "published"
        summary.append(f"year {region} {year} {by_year[year][0]} {by_year[year][1]} {kind}")
    for index, (day, (local, utc)) in enumerate(sorted(sessions.items())):
        special = local != era_on(eras_, day) and day.year in SAMPLE_SPECIAL_YEARS
        if index % SAMPLE_STRIDE == 0 or special:
            instants = ",".join(
                f"{a.tz_convert('UTC').strftime('%Y-%m-%dT%H:%MZ')}/{b.tz_convert('UTC').strftime('%Y-%m-%dT%H:%MZ')}"
                for a, b in utc
            )
            summary.append(f"sample {region} {day} {instants}")
    return summary


def main() -> None:
    if xcals.__version__ != LIBRARY_VERSION:
        sys.exit(f"exchange_calendars {xcals.__version__} found, {LIBRARY_VERSION} expected (requirements.txt)")
    OUT.mkdir(parents=True, exist_ok=True)
    summary = [
        f"# Checks for the calendar data, from exchange_calendars {LIBRARY_VERSION}'s session table",
        "# (after the documented CORRECTIONS of regular hours; projected years from the projection);",
        "# generated by tools/calendars/generate.py with the data files beside it.",
        "#   year REGION YEAR SESSIONS MINUTES published|projected   trading days and minutes",
        "#   sample REGION DATE OPEN/CLOSE[,OPEN/CLOSE]             a session's spans in UTC",
    ]
    for market in MARKETS:
        summary.extend(generate(*market))
    (OUT / "summary.txt").write_text("\n".join(summary) + "\n")


if __name__ == "__main__":
    main()
