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
//! DST switches, lunch breaks, weekends and holidays included, is unit-tested at fixed instants.
//!
//! The holiday tables are data, not rules: they list the full-day closures of **2025 and 2026
//! only** and must be extended every year as the exchanges publish their calendars. Outside
//! them only weekends close a market. Not modelled: half-days (they read as full days, e.g.
//! NYSE's day after Thanksgiving, HKEX's Christmas Eve), closing auctions, ad-hoc closures
//! (typhoons, days of mourning announced at short notice), and FX holidays.

use std::fmt;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::reference::service::AssetClass;

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

    /// `hour:minute`; checked when the tables below are compiled.
    pub const fn hm(hour: u16, minute: u16) -> Self {
        assert!((hour < 24 && minute < 60) || (hour == 24 && minute == 0), "not a time of day");
        Self(hour * 60 + minute)
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
    /// The regular sessions of the local day, in local time; empty on a weekend or holiday.
    pub sessions: Vec<Session>,
    /// When the next regular session starts, strictly after the instant; `None` for a market
    /// that never closes.
    pub next_open: Option<DateTime<Utc>>,
    /// When the current (or else the next) regular session ends; `None` for a market that never
    /// closes.
    pub next_close: Option<DateTime<Utc>>,
}

/// The status of `region`'s market at `at`.
pub fn status(region: Region, at: DateTime<Utc>) -> MarketStatus {
    let market = region.market();
    let local = at.with_timezone(&market.tz);
    let (state, sessions, next_open, next_close) = match &market.schedule {
        Schedule::Always => (MarketState::Open, vec![Session::new(Clock::MIDNIGHT, Clock::END_OF_DAY)], None, None),
        Schedule::Fx => fx(market.tz, at, local.date_naive()),
        Schedule::Exchange(exchange) => exchange.status(market.tz, at, local.date_naive()),
    };
    MarketStatus {
        region,
        timezone: market.tz.name(),
        state,
        local_time: local.fixed_offset(),
        sessions,
        next_open,
        next_close,
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
            Schedule::Exchange(exchange) if exchange.is_trading_day(date) => exchange.regular.to_vec(),
            Schedule::Exchange(_) => Vec::new(),
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

/// An exchange's trading day: weekdays that are not holidays.
struct Exchange {
    pre: Option<Session>,
    /// In order; the gaps between them are lunch breaks.
    regular: &'static [Session],
    post: Option<Session>,
    /// Full-day closures on weekdays, sorted.
    holidays: &'static [NaiveDate],
}

/// How far ahead to look for the next session: well past the longest closure in the tables
/// (CN's Spring Festival, nine days with its weekends).
const LOOKAHEAD_DAYS: u64 = 31;

impl Exchange {
    fn is_trading_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && self.holidays.binary_search(&date).is_err()
    }

    fn status(&self, tz: Tz, at: DateTime<Utc>, today: NaiveDate) -> Computed {
        let trading = self.is_trading_day(today);
        let within = |session: &Session| session.contains(at, today, tz);
        let state = if !trading {
            MarketState::Closed
        } else if self.regular.iter().any(within) {
            MarketState::Open
        } else if self.regular.windows(2).any(|pair| within(&Session::new(pair[0].close, pair[1].open))) {
            MarketState::LunchBreak
        } else if self.pre.as_ref().is_some_and(within) {
            MarketState::PreMarket
        } else if self.post.as_ref().is_some_and(within) {
            MarketState::PostMarket
        } else {
            MarketState::Closed
        };
        let sessions = if trading { self.regular.to_vec() } else { Vec::new() };

        let upcoming = (0..=LOOKAHEAD_DAYS)
            .filter_map(|n| today.checked_add_days(Days::new(n)))
            .filter(|date| self.is_trading_day(*date))
            .flat_map(|date| self.regular.iter().map(move |s| (s.open.on(date, tz), s.close.on(date, tz))));
        let next_open = upcoming.clone().filter_map(|(open, _)| open).find(|open| *open > at);
        let next_close = upcoming.filter_map(|(_, close)| close).find(|close| *close > at);
        (state, sessions, next_open, next_close)
    }
}

/// FX trades from Sunday 17:00 to Friday 17:00 New York time, around the clock.
fn fx(tz: Tz, at: DateTime<Utc>, today: NaiveDate) -> Computed {
    let sessions = fx_sessions(today);
    let state =
        if sessions.iter().any(|s| s.contains(at, today, tz)) { MarketState::Open } else { MarketState::Closed };
    // Midnights inside the week are not closes: only the week's ends count.
    let next = |weekday: Weekday, clock: Clock| {
        (0..=7)
            .filter_map(|n| today.checked_add_days(Days::new(n)))
            .filter(|date| date.weekday() == weekday)
            .filter_map(|date| clock.on(date, tz))
            .find(|instant| *instant > at)
    };
    (state, sessions, next(Weekday::Sun, FX_WEEK_OPENS), next(Weekday::Fri, FX_WEEK_CLOSES))
}

/// Spot FX's week opens Sunday 17:00 and closes Friday 17:00, New York time.
const FX_WEEK_OPENS: Clock = Clock::hm(17, 0);
const FX_WEEK_CLOSES: Clock = Clock::hm(17, 0);

/// FX's sessions on a New York calendar day.
fn fx_sessions(date: NaiveDate) -> Vec<Session> {
    match date.weekday() {
        Weekday::Sat => Vec::new(),
        Weekday::Sun => vec![Session::new(FX_WEEK_OPENS, Clock::END_OF_DAY)],
        Weekday::Fri => vec![Session::new(Clock::MIDNIGHT, FX_WEEK_CLOSES)],
        _ => vec![Session::new(Clock::MIDNIGHT, Clock::END_OF_DAY)],
    }
}

const fn hm(hour: u16, minute: u16) -> Clock {
    Clock::hm(hour, minute)
}

const fn session(open: Clock, close: Clock) -> Session {
    Session::new(open, close)
}

#[allow(clippy::expect_used, reason = "const tables: an invalid date fails the build, not a request")]
const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

static US: Market = Market {
    tz: Tz::America__New_York,
    schedule: Schedule::Exchange(Exchange {
        pre: Some(session(hm(4, 0), hm(9, 30))),
        regular: &[session(hm(9, 30), hm(16, 0))],
        post: Some(session(hm(16, 0), hm(20, 0))),
        holidays: US_HOLIDAYS,
    }),
};

static HK: Market = Market {
    tz: Tz::Asia__Hong_Kong,
    schedule: Schedule::Exchange(Exchange {
        // The pre-opening session (order input and the opening auction).
        pre: Some(session(hm(9, 0), hm(9, 30))),
        regular: &[session(hm(9, 30), hm(12, 0)), session(hm(13, 0), hm(16, 0))],
        post: None,
        holidays: HK_HOLIDAYS,
    }),
};

static CN: Market = Market {
    tz: Tz::Asia__Shanghai,
    schedule: Schedule::Exchange(Exchange {
        // The opening call auction. 09:25–09:30 (orders accepted, nothing matched) reads CLOSED.
        pre: Some(session(hm(9, 15), hm(9, 25))),
        regular: &[session(hm(9, 30), hm(11, 30)), session(hm(13, 0), hm(15, 0))],
        post: None,
        holidays: CN_HOLIDAYS,
    }),
};

static JP: Market = Market {
    tz: Tz::Asia__Tokyo,
    schedule: Schedule::Exchange(Exchange {
        pre: None,
        // The afternoon session closes at 15:30 since 5 November 2024.
        regular: &[session(hm(9, 0), hm(11, 30)), session(hm(12, 30), hm(15, 30))],
        post: None,
        holidays: JP_HOLIDAYS,
    }),
};

static GB: Market = Market {
    tz: Tz::Europe__London,
    schedule: Schedule::Exchange(Exchange {
        pre: None,
        regular: &[session(hm(8, 0), hm(16, 30))],
        post: None,
        holidays: GB_HOLIDAYS,
    }),
};

static DE: Market = Market {
    tz: Tz::Europe__Berlin,
    schedule: Schedule::Exchange(Exchange {
        pre: None,
        regular: &[session(hm(9, 0), hm(17, 30))],
        post: None,
        holidays: DE_HOLIDAYS,
    }),
};

static GLOBAL: Market = Market { tz: Tz::UTC, schedule: Schedule::Always };

static FX: Market = Market { tz: Tz::America__New_York, schedule: Schedule::Fx };

/// NYSE full-day closures. Early closes (13:00) are not modelled.
static US_HOLIDAYS: &[NaiveDate] = &[
    date(2025, 1, 1),   // New Year's Day
    date(2025, 1, 9),   // National Day of Mourning for President Carter
    date(2025, 1, 20),  // Martin Luther King Jr. Day
    date(2025, 2, 17),  // Washington's Birthday
    date(2025, 4, 18),  // Good Friday
    date(2025, 5, 26),  // Memorial Day
    date(2025, 6, 19),  // Juneteenth
    date(2025, 7, 4),   // Independence Day
    date(2025, 9, 1),   // Labor Day
    date(2025, 11, 27), // Thanksgiving
    date(2025, 12, 25), // Christmas
    date(2026, 1, 1),   // New Year's Day
    date(2026, 1, 19),  // Martin Luther King Jr. Day
    date(2026, 2, 16),  // Washington's Birthday
    date(2026, 4, 3),   // Good Friday
    date(2026, 5, 25),  // Memorial Day
    date(2026, 6, 19),  // Juneteenth
    date(2026, 7, 3),   // Independence Day (observed)
    date(2026, 9, 7),   // Labor Day
    date(2026, 11, 26), // Thanksgiving
    date(2026, 12, 25), // Christmas
];

/// HKEX full-day closures (Hong Kong general holidays on weekdays). Half-days (the eves of Lunar
/// New Year, Christmas and New Year) are not modelled.
static HK_HOLIDAYS: &[NaiveDate] = &[
    date(2025, 1, 1),   // New Year's Day
    date(2025, 1, 29),  // Lunar New Year's Day
    date(2025, 1, 30),  // second day of Lunar New Year
    date(2025, 1, 31),  // third day of Lunar New Year
    date(2025, 4, 4),   // Ching Ming Festival
    date(2025, 4, 18),  // Good Friday
    date(2025, 4, 21),  // Easter Monday
    date(2025, 5, 1),   // Labour Day
    date(2025, 5, 5),   // Birthday of the Buddha
    date(2025, 7, 1),   // HKSAR Establishment Day
    date(2025, 10, 1),  // National Day
    date(2025, 10, 7),  // day following the Mid-Autumn Festival
    date(2025, 10, 29), // Chung Yeung Festival
    date(2025, 12, 25), // Christmas Day
    date(2025, 12, 26), // first weekday after Christmas Day
    date(2026, 1, 1),   // New Year's Day
    date(2026, 2, 17),  // Lunar New Year's Day
    date(2026, 2, 18),  // second day of Lunar New Year
    date(2026, 2, 19),  // third day of Lunar New Year
    date(2026, 4, 3),   // Good Friday
    date(2026, 4, 6),   // day following Ching Ming Festival
    date(2026, 4, 7),   // day following Easter Monday
    date(2026, 5, 1),   // Labour Day
    date(2026, 5, 25),  // day following the Birthday of the Buddha
    date(2026, 6, 19),  // Tuen Ng Festival
    date(2026, 7, 1),   // HKSAR Establishment Day
    date(2026, 10, 1),  // National Day
    date(2026, 10, 19), // day following Chung Yeung Festival
    date(2026, 12, 25), // Christmas Day (the first weekday after it is Saturday the 26th)
];

/// SSE/SZSE full-day closures, as the State Council's holiday arrangements set them. The
/// exchanges do not trade on the weekend make-up working days.
static CN_HOLIDAYS: &[NaiveDate] = &[
    date(2025, 1, 1), // New Year's Day
    // Spring Festival: 28 January to 4 February.
    date(2025, 1, 28),
    date(2025, 1, 29),
    date(2025, 1, 30),
    date(2025, 1, 31),
    date(2025, 2, 3),
    date(2025, 2, 4),
    date(2025, 4, 4), // Qingming
    // Labour Day: 1 to 5 May.
    date(2025, 5, 1),
    date(2025, 5, 2),
    date(2025, 5, 5),
    date(2025, 6, 2), // Dragon Boat Festival
    // National Day and Mid-Autumn Festival: 1 to 8 October.
    date(2025, 10, 1),
    date(2025, 10, 2),
    date(2025, 10, 3),
    date(2025, 10, 6),
    date(2025, 10, 7),
    date(2025, 10, 8),
    // New Year's Day: 1 to 3 January.
    date(2026, 1, 1),
    date(2026, 1, 2),
    // Spring Festival: 15 to 23 February.
    date(2026, 2, 16),
    date(2026, 2, 17),
    date(2026, 2, 18),
    date(2026, 2, 19),
    date(2026, 2, 20),
    date(2026, 2, 23),
    date(2026, 4, 6), // Qingming
    // Labour Day: 1 to 5 May.
    date(2026, 5, 1),
    date(2026, 5, 4),
    date(2026, 5, 5),
    date(2026, 6, 19), // Dragon Boat Festival
    date(2026, 9, 25), // Mid-Autumn Festival
    // National Day: 1 to 7 October.
    date(2026, 10, 1),
    date(2026, 10, 2),
    date(2026, 10, 5),
    date(2026, 10, 6),
    date(2026, 10, 7),
];

/// TSE full-day closures: national holidays and the year-end break (31 December to 3 January).
static JP_HOLIDAYS: &[NaiveDate] = &[
    date(2025, 1, 1),   // New Year
    date(2025, 1, 2),   // year-end break
    date(2025, 1, 3),   // year-end break
    date(2025, 1, 13),  // Coming of Age Day
    date(2025, 2, 11),  // National Foundation Day
    date(2025, 2, 24),  // Emperor's Birthday (observed)
    date(2025, 3, 20),  // Vernal Equinox Day
    date(2025, 4, 29),  // Showa Day
    date(2025, 5, 5),   // Children's Day
    date(2025, 5, 6),   // substitute holiday (Greenery Day fell on Sunday)
    date(2025, 7, 21),  // Marine Day
    date(2025, 8, 11),  // Mountain Day
    date(2025, 9, 15),  // Respect for the Aged Day
    date(2025, 9, 23),  // Autumnal Equinox Day
    date(2025, 10, 13), // Sports Day
    date(2025, 11, 3),  // Culture Day
    date(2025, 11, 24), // Labour Thanksgiving Day (observed)
    date(2025, 12, 31), // year-end break
    date(2026, 1, 1),   // New Year
    date(2026, 1, 2),   // year-end break
    date(2026, 1, 12),  // Coming of Age Day
    date(2026, 2, 11),  // National Foundation Day
    date(2026, 2, 23),  // Emperor's Birthday
    date(2026, 3, 20),  // Vernal Equinox Day
    date(2026, 4, 29),  // Showa Day
    date(2026, 5, 4),   // Greenery Day
    date(2026, 5, 5),   // Children's Day
    date(2026, 5, 6),   // substitute holiday (Constitution Day fell on Sunday)
    date(2026, 7, 20),  // Marine Day
    date(2026, 8, 11),  // Mountain Day
    date(2026, 9, 21),  // Respect for the Aged Day
    date(2026, 9, 22),  // national holiday (between two holidays)
    date(2026, 9, 23),  // Autumnal Equinox Day
    date(2026, 10, 12), // Sports Day
    date(2026, 11, 3),  // Culture Day
    date(2026, 11, 23), // Labour Thanksgiving Day
    date(2026, 12, 31), // year-end break
];

/// LSE full-day closures (England's bank holidays). Half-days (24 and 31 December) are not
/// modelled.
static GB_HOLIDAYS: &[NaiveDate] = &[
    date(2025, 1, 1),   // New Year's Day
    date(2025, 4, 18),  // Good Friday
    date(2025, 4, 21),  // Easter Monday
    date(2025, 5, 5),   // Early May bank holiday
    date(2025, 5, 26),  // Spring bank holiday
    date(2025, 8, 25),  // Summer bank holiday
    date(2025, 12, 25), // Christmas Day
    date(2025, 12, 26), // Boxing Day
    date(2026, 1, 1),   // New Year's Day
    date(2026, 4, 3),   // Good Friday
    date(2026, 4, 6),   // Easter Monday
    date(2026, 5, 4),   // Early May bank holiday
    date(2026, 5, 25),  // Spring bank holiday
    date(2026, 8, 31),  // Summer bank holiday
    date(2026, 12, 25), // Christmas Day
    date(2026, 12, 28), // Boxing Day (observed)
];

/// Xetra full-day closures.
static DE_HOLIDAYS: &[NaiveDate] = &[
    date(2025, 1, 1),   // New Year's Day
    date(2025, 4, 18),  // Good Friday
    date(2025, 4, 21),  // Easter Monday
    date(2025, 5, 1),   // Labour Day
    date(2025, 12, 24), // Christmas Eve
    date(2025, 12, 25), // Christmas Day
    date(2025, 12, 26), // Boxing Day
    date(2025, 12, 31), // New Year's Eve
    date(2026, 1, 1),   // New Year's Day
    date(2026, 4, 3),   // Good Friday
    date(2026, 4, 6),   // Easter Monday
    date(2026, 5, 1),   // Labour Day
    date(2026, 12, 24), // Christmas Eve
    date(2026, 12, 25), // Christmas Day
    date(2026, 12, 31), // New Year's Eve
];

#[cfg(test)]
mod tests;
