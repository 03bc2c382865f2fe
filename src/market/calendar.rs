//! Trading calendars: whether a market is trading at an instant, and when it next opens and
//! closes.
//!
//! A quote is only "live" while its market trades, so clients need each market's hours, and
//! those are defined as wall-clock times in the market's own time zone (09:30 in New York is
//! 13:30 UTC in summer and 14:30 UTC in winter). Sessions are therefore kept as local times and
//! turned into instants day by day through the IANA zones of `chrono-tz`: daylight saving is
//! the zone database's business, never arithmetic on offsets here.
//!
//! `status` is a pure function of the instant it is given (no clock inside), so every case,
//! DST switches, lunch breaks, weekends, holidays and half-days included, is unit-tested at
//! fixed instants.
//!
//! **Where the calendars come from.** The exchanges' regular sessions, holidays, early closes,
//! half-days and lunch breaks are data generated from `exchange_calendars` (the calendar
//! library the field uses) by `tools/calendars/generate.py`, from 2000 through 2030, checked in
//! under `calendar/data/` and embedded in the binary (`table`): US = XNYS, HK = XHKG,
//! CN = XSHG, JP = XTKS, GB = XLON, DE = XETR. The regular hours change by era (HKEX traded
//! 10:00-12:30 and 14:30-16:00 until 2011-03-04, with a 13:30 afternoon open until 2012-03-02,
//! and 09:30-12:00, 13:00-16:00 since; TSE closes at 15:30 since 2024-11-05). Where the
//! library's history of regular hours is wrong and the exchange's record says otherwise, the
//! generator corrects it and names its source (today: HKEX's lunch break before 2012). China's holidays are
//! published a year at a time; the library has them through 2026, and 2027-2030 are projected
//! by the State Council's current pattern: `MarketStatus::provisional` says when a day's
//! schedule is projected rather than published, and a unit test fails a year before any
//! market's data runs out. Outside the data's coverage, weekdays keep the nearest era's hours
//! and no holidays (and read as provisional).
//!
//! **Extended hours** are finql's own, on top of the generated sessions and relative to them,
//! so they follow a half-day: US pre-market from 04:00 to the open and post-market for four
//! hours after the close (16:00-20:00; 13:00-17:00 on an early-close day, as NYSE Arca and
//! Nasdaq run it), HKEX's pre-opening session (30 minutes before the open), China's opening
//! call auction (09:15-09:25).
//!
//! Not modelled: ad-hoc closures announced at short notice after the data was generated
//! (typhoon and rainstorm signals in Hong Kong, days of mourning), closing auctions, FX
//! holidays (spot FX is Sunday 17:00 to Friday 17:00 New York time, every week), and intraday
//! halts. Likely gaps in the library's older history, left as it has them until checked
//! against the exchanges' records: TSE's morning session ended at 11:00 before November 2011,
//! and Xetra's regular hours ran later than 17:30 before November 2003.

use std::{fmt, sync::LazyLock};

use chrono::{DateTime, Days, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::reference::service::AssetClass;

mod fx;
mod table;

use fx::{fx, fx_sessions};
use table::{Table, TableError};

/// A market, by the region code clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// NYSE and Nasdaq.
    Us,
    /// HKEX.
    Hk,
    /// SSE and SZSE.
    Cn,
    /// TSE.
    Jp,
    /// LSE.
    Gb,
    /// Xetra.
    De,
    /// Crypto: always open.
    Global,
    /// Spot FX: Sunday 17:00 to Friday 17:00, New York time.
    Fx,
}

impl Region {
    pub const ALL: [Region; 8] =
        [Region::Us, Region::Hk, Region::Cn, Region::Jp, Region::Gb, Region::De, Region::Global, Region::Fx];

    pub fn code(self) -> &'static str {
        match self {
            Self::Us => "US",
            Self::Hk => "HK",
            Self::Cn => "CN",
            Self::Jp => "JP",
            Self::Gb => "GB",
            Self::De => "DE",
            Self::Global => "GLOBAL",
            Self::Fx => "FX",
        }
    }

    /// A region code, in any case.
    pub fn parse(raw: &str) -> Result<Self, UnknownRegion> {
        Self::ALL.into_iter().find(|r| r.code().eq_ignore_ascii_case(raw)).ok_or_else(|| UnknownRegion(raw.to_owned()))
    }

    /// The IANA time zone the market's hours are defined in.
    pub fn timezone(self) -> Tz {
        self.market().tz
    }

    /// The market whose hours an instrument keeps: crypto trades around the clock, spot FX
    /// through the week, and everything else (stocks, funds, indices, futures) keeps the hours
    /// of the exchange in the catalog's region.
    pub fn of(asset_class: AssetClass, catalog_region: &str) -> Result<Self, UnknownRegion> {
        match asset_class {
            AssetClass::Crypto => Ok(Self::Global),
            AssetClass::Forex => Ok(Self::Fx),
            AssetClass::Stock | AssetClass::Fund | AssetClass::Index | AssetClass::Future => {
                Self::parse(catalog_region)
            }
        }
    }

    fn market(self) -> &'static Market {
        match self {
            Self::Us => &US,
            Self::Hk => &HK,
            Self::Cn => &CN,
            Self::Jp => &JP,
            Self::Gb => &GB,
            Self::De => &DE,
            Self::Global => &GLOBAL,
            Self::Fx => &FX,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A region code that names no market. Its message names the code and lists the known ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownRegion(pub String);

impl fmt::Display for UnknownRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The input is echoed back: keep it short.
        let shown: String = self.0.chars().take(32).collect();
        let ellipsis = if shown.len() < self.0.len() { "…" } else { "" };
        let known: Vec<&str> = Region::ALL.iter().map(|r| r.code()).collect();
        write!(f, "unknown region `{shown}{ellipsis}`; known regions: {}", known.join(", "))
    }
}

impl std::error::Error for UnknownRegion {}

/// What a market is doing at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketState {
    /// Before the regular session: pre-market trading, or an opening auction.
    PreMarket,
    /// In a regular session.
    Open,
    /// Between the morning and the afternoon session of a trading day.
    LunchBreak,
    /// After the regular session: post-market trading.
    PostMarket,
    Closed,
}

/// A local wall-clock time, as minutes after midnight; `24:00` is the end of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Clock(u16);

impl Clock {
    const MIDNIGHT: Clock = Clock(0);
    const END_OF_DAY: Clock = Clock(24 * 60);

    /// `hour:minute`; checked when the constants below are compiled.
    pub const fn hm(hour: u16, minute: u16) -> Self {
        assert!((hour < 24 && minute < 60) || (hour == 24 && minute == 0), "not a time of day");
        Self(hour * 60 + minute)
    }

    /// `minutes` earlier on the same day; `None` before midnight.
    fn minus(self, minutes: u16) -> Option<Self> {
        self.0.checked_sub(minutes).map(Self)
    }

    /// `minutes` later on the same day; `None` past the end of the day.
    fn plus(self, minutes: u16) -> Option<Self> {
        self.0.checked_add(minutes).filter(|m| *m <= Self::END_OF_DAY.0).map(Self)
    }

    /// The instant this clock shows on `date` in `tz` (`24:00` is the next day's `00:00`).
    ///
    /// No session starts or ends in a DST gap or overlap, but this stays total: in an overlap it
    /// takes the earlier instant, in a gap the same wall-clock time an hour later, past the gap.
    fn on(self, date: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
        let (date, minutes) = if self >= Self::END_OF_DAY { (date.succ_opt()?, 0) } else { (date, self.0) };
        let local = date.and_time(NaiveTime::from_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0)?);
        tz.from_local_datetime(&local)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(local + TimeDelta::hours(1))).earliest())
            .map(|instant| instant.with_timezone(&Utc))
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A span of local time within one day, `[open, close)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub open: Clock,
    pub close: Clock,
}

impl Session {
    const fn new(open: Clock, close: Clock) -> Self {
        Self { open, close }
    }

    fn contains(&self, at: DateTime<Utc>, date: NaiveDate, tz: Tz) -> bool {
        match (self.open.on(date, tz), self.close.on(date, tz)) {
            (Some(open), Some(close)) => open <= at && at < close,
            _ => false,
        }
    }
}

/// A market at an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketStatus {
    pub region: Region,
    /// IANA name of the market's time zone.
    pub timezone: &'static str,
    pub state: MarketState,
    /// The instant asked about, in the market's time zone.
    pub local_time: DateTime<FixedOffset>,
    /// The regular sessions of the local day, in local time; empty on a weekend or holiday,
    /// shortened on a half-day.
    pub sessions: Vec<Session>,
    /// When the next regular session starts, strictly after the instant; `None` for a market
    /// that never closes.
    pub next_open: Option<DateTime<Utc>>,
    /// When the current (or else the next) regular session ends; `None` for a market that never
    /// closes.
    pub next_close: Option<DateTime<Utc>>,
    /// The span of days the market's calendar data describes; `None` for markets whose hours
    /// are a weekly rule without holidays (crypto, FX).
    pub coverage: Option<Coverage>,
    /// Whether the local day's schedule is projected (or assumed, outside the coverage) rather
    /// than published by the exchange. Always false for crypto and FX.
    pub provisional: bool,
}

/// What a market's calendar data covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// The first local day described.
    pub first: NaiveDate,
    /// The last local day described, published or projected.
    pub last: NaiveDate,
    /// The last local day whose schedule the exchange has published; the days after it, up to
    /// `last`, are projected by rule.
    pub published_through: NaiveDate,
}

/// The status of `region`'s market at `at`.
pub fn status(region: Region, at: DateTime<Utc>) -> MarketStatus {
    let market = region.market();
    let local = at.with_timezone(&market.tz);
    let today = local.date_naive();
    let (state, sessions, next_open, next_close) = match &market.schedule {
        Schedule::Always => (MarketState::Open, vec![Session::new(Clock::MIDNIGHT, Clock::END_OF_DAY)], None, None),
        Schedule::Fx => fx(market.tz, at, today),
        Schedule::Exchange(exchange) => exchange.status(market.tz, at, today),
    };
    MarketStatus {
        region,
        timezone: market.tz.name(),
        state,
        local_time: local.fixed_offset(),
        sessions,
        next_open,
        next_close,
        coverage: coverage(region),
        provisional: is_provisional(region, today),
    }
}

/// What `region`'s calendar data covers; `None` for crypto and FX (a weekly rule, no data).
pub fn coverage(region: Region) -> Option<Coverage> {
    match &region.market().schedule {
        Schedule::Exchange(exchange) => {
            exchange.table().map(|t| Coverage { first: t.first, last: t.last, published_through: t.published_through })
        }
        Schedule::Always | Schedule::Fx => None,
    }
}

/// Whether `region`'s schedule for its local day `date` is projected or assumed rather than
/// published (see [`MarketStatus::provisional`]).
pub fn is_provisional(region: Region, date: NaiveDate) -> bool {
    match &region.market().schedule {
        Schedule::Exchange(exchange) => exchange.table().is_none_or(|t| t.is_provisional(date)),
        Schedule::Always | Schedule::Fx => false,
    }
}

/// The regular sessions of `region` on its local calendar day `date`, as UTC instants, in
/// order; empty when the market does not trade that day. Crypto's day is the UTC day; spot FX's
/// is New York's (Sunday from 17:00, Friday until 17:00, no Saturday).
pub fn sessions_on(region: Region, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let market = region.market();
    market
        .local_sessions(date)
        .into_iter()
        .filter_map(|session| Some((session.open.on(date, market.tz)?, session.close.on(date, market.tz)?)))
        .collect()
}

/// Whether `region` trades at all on its local calendar day `date`.
pub fn is_trading_day(region: Region, date: NaiveDate) -> bool {
    !region.market().local_sessions(date).is_empty()
}

/// The last trading day strictly before `date` (`None` only past the start of chrono's range,
/// or after a closure longer than any on record).
pub fn previous_trading_day(region: Region, date: NaiveDate) -> Option<NaiveDate> {
    (1..=LOOKAHEAD_DAYS).filter_map(|n| date.checked_sub_days(Days::new(n))).find(|day| is_trading_day(region, *day))
}

/// The first trading day strictly after `date` (`None` as for [`previous_trading_day`]).
pub fn next_trading_day(region: Region, date: NaiveDate) -> Option<NaiveDate> {
    (1..=LOOKAHEAD_DAYS).filter_map(|n| date.checked_add_days(Days::new(n))).find(|day| is_trading_day(region, *day))
}

type Computed = (MarketState, Vec<Session>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

struct Market {
    tz: Tz,
    schedule: Schedule,
}

impl Market {
    /// The regular sessions of a local calendar day, in local time.
    fn local_sessions(&self, date: NaiveDate) -> Vec<Session> {
        match &self.schedule {
            Schedule::Always => vec![Session::new(Clock::MIDNIGHT, Clock::END_OF_DAY)],
            Schedule::Fx => fx_sessions(date),
            Schedule::Exchange(exchange) => exchange.regular(date).to_vec(),
        }
    }
}

enum Schedule {
    /// Crypto.
    Always,
    /// Spot FX: one session a week.
    Fx,
    Exchange(Exchange),
}

/// An exchange: its generated calendar, and finql's extended hours around it.
struct Exchange {
    /// The parsed data file, parsed on first use.
    table: &'static LazyLock<Result<Table, TableError>>,
    /// Pre-market trading or an opening auction, before the day's first regular session.
    pre: Option<Extended>,
    /// Post-market trading, after the day's last regular session.
    post: Option<Extended>,
}

/// Extended hours, as minutes relative to the day's regular sessions (before the first open for
/// the pre-market, after the last close for the post-market): `start` and `end` minutes away,
/// so they follow a late open or an early close.
#[derive(Clone, Copy)]
struct Extended {
    start: u16,
    end: u16,
}

/// How far to look for the next session or trading day: well past the longest closure in the
/// data (a unit test checks): China's Spring Festival of 2000-2002, 16 days without a session;
/// elsewhere at most 10 (Tokyo's Golden Week of 2019, around the enthronement).
const LOOKAHEAD_DAYS: u64 = 31;

impl Exchange {
    /// The table, or `None` if its file is malformed (logged once, when parsed): the unit tests
    /// parse every file, so a built and tested binary never sees that, and the market then
    /// reads as closed rather than failing a request.
    fn table(&self) -> Option<&'static Table> {
        LazyLock::force(self.table).as_ref().ok()
    }

    fn regular(&self, date: NaiveDate) -> &'static [Session] {
        self.table().map_or(&[], |table| table.sessions(date))
    }

    fn status(&self, tz: Tz, at: DateTime<Utc>, today: NaiveDate) -> Computed {
        let regular = self.regular(today);
        let within = |session: &Session| session.contains(at, today, tz);
        let (first_open, last_close) = (regular.first().map(|s| s.open), regular.last().map(|s| s.close));
        let pre =
            self.pre.zip(first_open).and_then(|(e, open)| Some(Session::new(open.minus(e.start)?, open.minus(e.end)?)));
        let post = self
            .post
            .zip(last_close)
            .and_then(|(e, close)| Some(Session::new(close.plus(e.start)?, close.plus(e.end)?)));
        let state = if regular.iter().any(within) {
            MarketState::Open
        } else if regular.windows(2).any(|pair| within(&Session::new(pair[0].close, pair[1].open))) {
            MarketState::LunchBreak
        } else if pre.as_ref().is_some_and(within) {
            MarketState::PreMarket
        } else if post.as_ref().is_some_and(within) {
            MarketState::PostMarket
        } else {
            MarketState::Closed
        };
        let (next_open, next_close) = self.upcoming(tz, at, today);
        (state, regular.to_vec(), next_open, next_close)
    }

    /// The next regular open and close strictly after `at`, looking from `today` on.
    fn upcoming(&self, tz: Tz, at: DateTime<Utc>, today: NaiveDate) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let upcoming = (0..=LOOKAHEAD_DAYS)
            .filter_map(|n| today.checked_add_days(Days::new(n)))
            .flat_map(|date| self.regular(date).iter().map(move |s| (s.open.on(date, tz), s.close.on(date, tz))));
        let next_open = upcoming.clone().filter_map(|(open, _)| open).find(|open| *open > at);
        let next_close = upcoming.filter_map(|(_, close)| close).find(|close| *close > at);
        (next_open, next_close)
    }
}

/// Each exchange's data file (generated by `tools/calendars/generate.py`), parsed once.
macro_rules! table {
    ($name:ident, $region:expr, $tz:expr, $file:literal) => {
        static $name: LazyLock<Result<Table, TableError>> = LazyLock::new(|| {
            let table = Table::parse(include_str!(concat!("calendar/data/", $file)), $region, $tz);
            if let Err(err) = &table {
        tracing::error!(%err, "calendar data unreadable; the market reads as closed");
            }
            table
        });
    };
}

table!(XNYS, Region::Us, Tz::America__New_York, "xnys.txt");
table!(XHKG, Region::Hk, Tz::Asia__Hong_Kong, "xhkg.txt");
table!(XSHG, Region::Cn, Tz::Asia__Shanghai, "xshg.txt");
table!(XTKS, Region::Jp, Tz::Asia__Tokyo, "xtks.txt");
table!(XLON, Region::Gb, Tz::Europe__London, "xlon.txt");
table!(XETR, Region::De, Tz::Europe__Berlin, "xetr.txt");

static US: Market = Market {
    tz: Tz::America__New_York,
    schedule: Schedule::Exchange(Exchange {
        table: &XNYS,
        // Pre-market from 04:00 (five and a half hours before the 09:30 open).
        pre: Some(Extended { start: 330, end: 0 }),
        // Post-market for four hours after the close: 16:00-20:00, and 13:00-17:00 on an
        // early-close day (NYSE Arca's and Nasdaq's late sessions end at 17:00 then).
        post: Some(Extended { start: 0, end: 240 }),
    }),
};

static HK: Market = Market {
    tz: Tz::Asia__Hong_Kong,
    schedule: Schedule::Exchange(Exchange {
        table: &XHKG,
        // The pre-opening session (order input and the opening auction): the 30 minutes before
        // the open.
        pre: Some(Extended { start: 30, end: 0 }),
        post: None,
    }),
};

static CN: Market = Market {
    tz: Tz::Asia__Shanghai,
    schedule: Schedule::Exchange(Exchange {
        table: &XSHG,
        // The opening call auction, 09:15-09:25. 09:25-09:30 (orders accepted, nothing
        // matched) reads CLOSED.
        pre: Some(Extended { start: 15, end: 5 }),
        post: None,
    }),
};

static JP: Market =
    Market { tz: Tz::Asia__Tokyo, schedule: Schedule::Exchange(Exchange { table: &XTKS, pre: None, post: None }) };

static GB: Market =
    Market { tz: Tz::Europe__London, schedule: Schedule::Exchange(Exchange { table: &XLON, pre: None, post: None }) };

static DE: Market =
    Market { tz: Tz::Europe__Berlin, schedule: Schedule::Exchange(Exchange { table: &XETR, pre: None, post: None }) };

static GLOBAL: Market = Market { tz: Tz::UTC, schedule: Schedule::Always };

static FX: Market = Market { tz: Tz::America__New_York, schedule: Schedule::Fx };

#[cfg(test)]
mod tests;
