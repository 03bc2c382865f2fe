//! One exchange's calendar data, parsed from the files `tools/calendars/generate.py` writes
//! (`data/<mic>.txt`, generated from `exchange_calendars`; the format is described in each
//! file's header).
//!
//! A file holds the regular hours by era and the exceptions to them: weekdays without a session
//! and days with other hours (early closes, half-days). Looking a day up is a map lookup, then
//! the era's hours if the day is a regular weekday. The files are embedded in the binary and
//! parsed once; parsing is strict (directives, order, ranges), so a malformed file fails the
//! unit tests that parse every file, never a request.

use std::{collections::HashMap, fmt, str::FromStr};

use chrono::{Datelike, NaiveDate, Weekday};
use chrono_tz::Tz;

use super::{Clock, Region, Session};

/// A market's calendar: the regular hours by era and the days that differ from them.
#[derive(Debug)]
pub(super) struct Table {
    /// The first and last local day the data describes.
    pub first: NaiveDate,
    pub last: NaiveDate,
    /// The last day the exchange has published; later days are projected by rule.
    pub published_through: NaiveDate,
    /// Indexed by `Weekday::num_days_from_monday`.
    weekdays: [bool; 7],
    /// Sorted by start date; the first starts on `first`.
    eras: Vec<(NaiveDate, Vec<Session>)>,
    /// The days that differ from their era: no sessions (closed), or other hours.
    exceptions: HashMap<NaiveDate, Vec<Session>>,
}

impl Table {
    /// The regular sessions of a local day. Outside the coverage no day is an exception, and
    /// the nearest era's hours hold on its weekdays.
    pub fn sessions(&self, date: NaiveDate) -> &[Session] {
        if let Some(sessions) = self.exceptions.get(&date) {
            return sessions;
        }
        if !self.weekdays[date.weekday().num_days_from_monday() as usize] {
            return &[];
        }
        self.eras.iter().rev().find(|(start, _)| *start <= date).or(self.eras.first()).map_or(&[], |(_, s)| s)
    }

    /// Whether the day's schedule is projected (or assumed, outside the coverage) rather than
    /// published by the exchange.
    pub fn is_provisional(&self, date: NaiveDate) -> bool {
        date < self.first || date > self.published_through
    }

    /// Parses a data file for `region`, whose hours are kept in `tz`.
    pub fn parse(text: &str, region: Region, tz: Tz) -> Result<Self, TableError> {
        let mut header = Header::default();
        let mut eras: Vec<(NaiveDate, Vec<Session>)> = Vec::new();
        let mut exceptions = HashMap::new();
        let mut last_exception: Option<NaiveDate> = None;

        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |message: String| TableError { region, line, message };
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let mut words = content.split_whitespace();
            let directive = words.next().unwrap_or_default();
            let mut arg = |what: &str| words.next().ok_or_else(|| err(format!("`{directive}` needs {what}")));
            match directive {
                "region" => {
                    let code = arg("a region code")?;
                    if code != region.code() {
                        return Err(err(format!("region {code}, expected {region}")));
                    }
                    header.region = true;
                }
                "timezone" => {
                    let name = arg("an IANA zone")?;
                    if name != tz.name() {
                        return Err(err(format!("time zone {name}, expected {}", tz.name())));
                    }
                    header.timezone = true;
                }
                "coverage" => {
                    let (first, last) =
                        (date(arg("a first day")?).map_err(err)?, date(arg("a last day")?).map_err(err)?);
                    if first > last {
                        return Err(err(format!("coverage {first} to {last} is empty")));
                    }
                    header.coverage = Some((first, last));
                }
                "published-through" => header.published_through = Some(date(arg("a day")?).map_err(err)?),
                "weekdays" => {
                    let mut weekdays = [false; 7];
                    for name in words.by_ref() {
                        let day = Weekday::from_str(name).map_err(|_| err(format!("`{name}` is not a weekday")))?;
                        weekdays[day.num_days_from_monday() as usize] = true;
                    }
                    header.weekdays = Some(weekdays);
                }
                "era" => {
                    let (Some((first, _)), Some(_)) = (header.coverage, header.weekdays) else {
                        return Err(err("an era before `coverage` and `weekdays`".into()));
                    };
                    let start = date(arg("a start day")?).map_err(err)?;
                    let sessions = sessions(arg("sessions")?).map_err(err)?;
                    match eras.last() {
                        None if start != first => {
                            return Err(err(format!("the first era starts {start}, not {first}")));
                        }
                        Some((previous, _)) if start <= *previous => {
                            return Err(err(format!("era {start} out of order")));
                        }
                        _ => {}
                    }
                    if sessions.is_empty() {
                        return Err(err("an era without sessions".into()));
                    }
                    eras.push((start, sessions));
                }
                "closed" | "hours" => {
                    let (Some((first, last)), Some(weekdays)) = (header.coverage, header.weekdays) else {
                        return Err(err("an exception before `coverage` and `weekdays`".into()));
                    };
                    if eras.is_empty() {
                        return Err(err("an exception before the first era".into()));
                    }
                    let day = date(arg("a day")?).map_err(err)?;
                    if !(first..=last).contains(&day) {
                        return Err(err(format!("{day} is outside the coverage {first} to {last}")));
                    }
                    if last_exception.is_some_and(|previous| day <= previous) {
                        return Err(err(format!("{day} out of order or repeated")));
                    }
                    last_exception = Some(day);
                    let regular = weekdays[day.weekday().num_days_from_monday() as usize];
                    let sessions = if directive == "closed" {
                        if !regular {
                            return Err(err(format!("{day} is closed anyway (not a regular weekday)")));
                        }
                        Vec::new()
                    } else {
                        let sessions = sessions(arg("sessions")?).map_err(err)?;
                        if sessions.is_empty() {
                            return Err(err(format!("{day} has hours but no sessions")));
                        }
                        sessions
                    };
                    // The rest of the line is the holiday's name, for readers of the file.
                    exceptions.insert(day, sessions);
                }
                other => return Err(err(format!("unknown directive `{other}`"))),
            }
        }

        let err = |message: &str| TableError { region, line: 0, message: message.to_owned() };
        let (Some((first, last)), Some(published_through), Some(weekdays)) =
            (header.coverage, header.published_through, header.weekdays)
        else {
            return Err(err("missing `coverage`, `published-through` or `weekdays`"));
        };
        if !(header.region && header.timezone) {
            return Err(err("missing `region` or `timezone`"));
        }
        if !(first..=last).contains(&published_through) {
            return Err(err("`published-through` outside the coverage"));
        }
        if eras.is_empty() {
            return Err(err("no era"));
        }
        Ok(Self { first, last, published_through, weekdays, eras, exceptions })
    }
}

#[derive(Default)]
struct Header {
    region: bool,
    timezone: bool,
    coverage: Option<(NaiveDate, NaiveDate)>,
    published_through: Option<NaiveDate>,
    weekdays: Option<[bool; 7]>,
}

/// A malformed calendar file: which market, which line (0: the file as a whole), what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableError {
    pub region: Region,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "calendar data for {}, line {}: {}", self.region, self.line, self.message)
    }
}

impl std::error::Error for TableError {}

fn date(raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| format!("`{raw}` is not a YYYY-MM-DD date"))
}

fn clock(raw: &str) -> Result<Clock, String> {
    let bad = || format!("`{raw}` is not an HH:MM time");
    let (hour, minute) = raw.split_once(':').ok_or_else(bad)?;
    if hour.len() != 2 || minute.len() != 2 {
        return Err(bad());
    }
    let (hour, minute) = (hour.parse::<u16>().map_err(|_| bad())?, minute.parse::<u16>().map_err(|_| bad())?);
    if (hour < 24 && minute < 60) || (hour, minute) == (24, 0) { Ok(Clock(hour * 60 + minute)) } else { Err(bad()) }
}

/// `HH:MM-HH:MM[,HH:MM-HH:MM...]`: spans in order, each non-empty, none overlapping.
fn sessions(raw: &str) -> Result<Vec<Session>, String> {
    let mut out: Vec<Session> = Vec::new();
    for span in raw.split(',') {
        let (open, close) = span.split_once('-').ok_or_else(|| format!("`{span}` is not HH:MM-HH:MM"))?;
        let session = Session::new(clock(open)?, clock(close)?);
        if session.open >= session.close {
            return Err(format!("`{span}` ends before it starts"));
        }
        if out.last().is_some_and(|previous| previous.close > session.open) {
            return Err(format!("`{raw}`: sessions out of order or overlapping"));
        }
        out.push(session);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
