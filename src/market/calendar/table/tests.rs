//! The calendar data: every file parses, it matches the library it was generated from, it does
//! not run out unnoticed, and the parser refuses what it cannot trust.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;

use super::Table;
use crate::market::calendar::{LOOKAHEAD_DAYS, Region, Schedule, coverage, is_trading_day, sessions_on};

/// The markets with calendar data.
const EXCHANGES: [Region; 6] = [Region::Us, Region::Hk, Region::Cn, Region::Jp, Region::Gb, Region::De];

fn table(region: Region) -> &'static Table {
    match &region.market().schedule {
        Schedule::Exchange(exchange) => match std::sync::LazyLock::force(exchange.table) {
            Ok(table) => table,
            Err(err) => panic!("{err}"),
        },
        _ => panic!("{region} has no calendar data"),
    }
}

fn day(text: &str) -> NaiveDate {
    text.parse().expect("a YYYY-MM-DD date")
}

#[test]
fn every_data_file_parses() {
    for region in EXCHANGES {
        let table = table(region);
        assert_eq!((table.first, table.last), (day("2000-01-01"), day("2030-12-31")), "{region}");
    }
    assert!(coverage(Region::Global).is_none() && coverage(Region::Fx).is_none());
}

/// The expiry guard: a year before any market's data (published or projected) runs out, this
/// fails, and the data must be regenerated (tools/calendars/generate.py) with a later end.
#[test]
fn no_calendar_ends_within_twelve_months_of_today() {
    let horizon = Utc::now().date_naive() + Months::new(12);
    for region in EXCHANGES {
        let last = table(region).last;
        assert!(
            last >= horizon,
            "{region}'s calendar data ends {last}, within 12 months of today: regenerate it with \
             tools/calendars/generate.py (raise LAST) before it runs out"
        );
    }
}

/// How far each market's published (not projected) schedule reaches. A regeneration that
/// moves these must update them here, so the change is seen; CN's published data is the one
/// to watch (the State Council publishes a year at a time, and exchange_calendars follows).
#[test]
fn published_data_reaches() {
    for (region, published_through) in [
        (Region::Us, "2030-12-31"),
        (Region::Hk, "2030-12-31"),
        (Region::Cn, "2026-12-31"),
        (Region::Jp, "2030-12-31"),
        (Region::Gb, "2030-12-31"),
        (Region::De, "2030-12-31"),
    ] {
        let table = table(region);
        eprintln!("{region}: published through {}, data through {}", table.published_through, table.last);
        assert_eq!(table.published_through, day(published_through), "{region}");
        assert!(!table.is_provisional(table.published_through) && !table.is_provisional(table.first), "{region}");
        if table.published_through < table.last {
            assert!(table.is_provisional(table.published_through.succ_opt().expect("a day")), "{region}");
        }
    }
}

/// `summary.txt` holds, straight from exchange_calendars' session table, each market's number
/// of sessions and trading minutes per year, and a sample of sessions as UTC instants: the
/// compressed files and this module's reading of them (eras, exceptions, time zones) must give
/// the same.
#[test]
fn the_data_matches_the_library_year_by_year_and_on_a_sample() {
    let summary = include_str!("../data/summary.txt");
    let (mut years, mut samples) = (0, 0);
    for line in summary.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let region = Region::parse(words[1]).expect("a region");
        match words[0] {
            "year" => {
                let year: i32 = words[2].parse().expect("a year");
                let (mut sessions, mut minutes) = (0, 0);
                let mut date = NaiveDate::from_ymd_opt(year, 1, 1).expect("a day");
                while date.year() == year {
                    let spans = sessions_on(region, date);
                    sessions += usize::from(!spans.is_empty());
                    minutes += spans.iter().map(|(open, close)| (*close - *open).num_minutes()).sum::<i64>();
                    date = date.succ_opt().expect("a day");
                }
                assert_eq!(sessions.to_string(), words[3], "{line}: sessions");
                assert_eq!(minutes.to_string(), words[4], "{line}: minutes");
                let provisional = table(region).is_provisional(NaiveDate::from_ymd_opt(year, 6, 30).expect("a day"));
                assert_eq!(provisional, words[5] == "projected", "{line}");
                years += 1;
            }
            "sample" => {
                let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = words[3]
                    .split(',')
                    .map(|span| {
                        let (open, close) = span.split_once('/').expect("OPEN/CLOSE");
                        let instant = |s: &str| s.replace('Z', ":00Z").parse().expect("an instant");
                        (instant(open), instant(close))
                    })
                    .collect();
                assert_eq!(sessions_on(region, day(words[2])), spans, "{line}");
                samples += 1;
            }
            other => panic!("unknown summary line `{other}`"),
        }
    }
    assert_eq!(years, 6 * 31, "every market, 2000 to 2030");
    assert!(samples > 200, "{samples} samples");
}

/// `next_trading_day` and `status` look `LOOKAHEAD_DAYS` ahead: no closure in the data may be
/// that long.
#[test]
fn lookahead_outlasts_the_longest_closure() {
    for region in EXCHANGES {
        let table = table(region);
        let (mut longest, mut run, mut date) = (0, 0, table.first);
        while date <= table.last {
            run = if is_trading_day(region, date) { 0 } else { run + 1 };
            longest = longest.max(run);
            date = date.succ_opt().expect("a day");
        }
        eprintln!("{region}: longest run without a session: {longest} days");
        assert!(longest < LOOKAHEAD_DAYS, "{region}: {longest} days without a session");
        assert!(longest >= 4, "{region}: {longest}; a long weekend at least, or the data is not read");
    }
}

fn parse(body: &str) -> Result<Table, super::TableError> {
    let header = "region US XNYS\ntimezone America/New_York\ncoverage 2000-01-01 2030-12-31\n\
                  published-through 2030-12-31\nweekdays Mon Tue Wed Thu Fri\nera 2000-01-01 09:30-16:00\n";
    Table::parse(&format!("{header}{body}"), Region::Us, Tz::America__New_York)
}

#[test]
fn a_well_formed_file_reads_as_written() {
    let table = parse(
        "# a comment\nera 2010-01-04 09:30-12:00,13:00-16:00\nclosed 2026-11-26 Thanksgiving\n\
         hours 2026-11-27 09:30-13:00 Black Friday\nhours 2026-11-28 10:00-11:00 a Saturday session\n",
    )
    .expect("well formed");
    let clocks =
        |date: &str| table.sessions(day(date)).iter().map(|s| format!("{}-{}", s.open, s.close)).collect::<Vec<_>>();
    assert_eq!(clocks("2009-12-31"), ["09:30-16:00"]);
    assert_eq!(clocks("2010-01-04"), ["09:30-12:00", "13:00-16:00"]);
    assert!(clocks("2026-11-26").is_empty());
    assert_eq!(clocks("2026-11-27"), ["09:30-13:00"]);
    assert_eq!(clocks("2026-11-28"), ["10:00-11:00"]);
    assert!(clocks("2026-11-29").is_empty(), "Sunday");
    assert_eq!(clocks("1999-12-31"), ["09:30-16:00"], "before the coverage: the first era");
    assert_eq!(clocks("2031-01-02"), ["09:30-12:00", "13:00-16:00"], "after it: the last era");
}

#[test]
fn malformed_files_are_refused_with_the_line() {
    for (body, message) in [
        ("closed 2026-13-01\n", "not a YYYY-MM-DD date"),
        ("closed 2026-11-28\n", "not a regular weekday"),
        ("closed 2031-01-02\n", "outside the coverage"),
        ("closed 2026-11-27\nclosed 2026-11-26\n", "out of order"),
        ("closed 2026-11-26\nclosed 2026-11-26\n", "out of order or repeated"),
        ("hours 2026-11-27 13:00-09:30\n", "ends before it starts"),
        ("hours 2026-11-27 09:30-12:00,11:00-16:00\n", "overlapping"),
        ("hours 2026-11-27 9:30-13:00\n", "not an HH:MM time"),
        ("hours 2026-11-27 09:30-24:01\n", "not an HH:MM time"),
        ("hours 2026-11-27\n", "needs sessions"),
        ("era 1999-01-01 09:30-16:00\n", "out of order"),
        ("holiday 2026-11-26\n", "unknown directive"),
    ] {
        let err = parse(body).expect_err(body);
        assert!(err.to_string().contains(message), "{body}: {err}");
        assert!(err.line > 6, "{body}: the line is named: {err}");
    }
    let wrong_zone = Table::parse("region US XNYS\ntimezone Europe/London\n", Region::Us, Tz::America__New_York);
    assert!(wrong_zone.expect_err("a wrong zone").to_string().contains("expected America/New_York"));
    let wrong_region = Table::parse("region HK XHKG\n", Region::Us, Tz::America__New_York);
    assert!(wrong_region.is_err());
    let headless = Table::parse("era 2000-01-01 09:30-16:00\n", Region::Us, Tz::America__New_York);
    assert!(headless.is_err());
    let empty = Table::parse("# nothing\n", Region::Us, Tz::America__New_York).expect_err("empty");
    assert_eq!(empty.line, 0);
}

/// `status` agrees with `sessions_on` at instants spread over the whole data: OPEN exactly
/// inside a regular session, the next open and close ahead of the instant and in order, and
/// `provisional` exactly after the published data.
#[test]
fn status_agrees_with_the_sessions_everywhere_in_the_data() {
    use crate::market::calendar::{MarketState, status};
    for region in EXCHANGES {
        let table = table(region);
        let mut date = table.first;
        let mut checked = 0;
        while date <= table.last {
            let spans = sessions_on(region, date);
            // Midnight, mid-morning and mid-afternoon UTC: Asian, European and American hours.
            for hour in [1, 4, 10, 15, 19] {
                let at = date.and_hms_opt(hour, 7, 0).expect("a time").and_utc();
                let s = status(region, at);
                let local = s.local_time.date_naive();
                let local_spans = sessions_on(region, local);
                let inside = local_spans.iter().any(|(open, close)| *open <= at && at < *close);
                assert_eq!(s.state == MarketState::Open, inside, "{region} {at}: {s:?}");
                assert_eq!(s.sessions.len(), local_spans.len(), "{region} {at}");
                let (next_open, next_close) = (s.next_open.expect("an open"), s.next_close.expect("a close"));
                assert!(next_open > at && next_close > at, "{region} {at}");
                assert_eq!(inside, next_close < next_open, "{region} {at}");
                assert_eq!(s.provisional, local < table.first || local > table.published_through, "{region} {at}");
            }
            assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "{region} {date}: in order");
            checked += 1;
            // Every third day: all weekdays and every part of the year, in a second.
            date = date + chrono::Days::new(3);
        }
        assert!(checked > 3000, "{region}: {checked} days");
    }
}
