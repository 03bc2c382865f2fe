//! Trading calendars: whether a market is trading at an instant, and when it next opens and
//! closes.
//!
//! A quote is only "live" while its market trades, so clients need each market's hours, and
//! those are defined as wall-clock times in the market's own time zone (09:30 in New York is
//! 13:30 UTC in summer and 14:30 UTC in winter). Sessions are therefore kept as local times and
//! turned into instants day by day through the IANA zones of `chrono-tz`: daylight saving is
//! the zone database's business, never arithmetic on offsets here.
//!
//! [`status`] is a pure function of the instant it is given (no clock inside), so every case,
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

type Computed = (MarketState, Vec<Session>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

struct Market {
    tz: Tz,
    schedule: Schedule,
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
    const WEEK_OPENS: Clock = Clock::hm(17, 0);
    const WEEK_CLOSES: Clock = Clock::hm(17, 0);
    let sessions = match today.weekday() {
        Weekday::Sat => Vec::new(),
        Weekday::Sun => vec![Session::new(WEEK_OPENS, Clock::END_OF_DAY)],
        Weekday::Fri => vec![Session::new(Clock::MIDNIGHT, WEEK_CLOSES)],
        _ => vec![Session::new(Clock::MIDNIGHT, Clock::END_OF_DAY)],
    };
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
    (state, sessions, next(Weekday::Sun, WEEK_OPENS), next(Weekday::Fri, WEEK_CLOSES))
}

const fn hm(hour: u16, minute: u16) -> Clock {
    Clock::hm(hour, minute)
}

const fn session(open: Clock, close: Clock) -> Session {
    Session::new(open, close)
}

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
mod tests {
    use super::*;

    fn at(instant: &str) -> DateTime<Utc> {
        instant.parse().expect("an RFC 3339 instant")
    }

    fn sessions(status: &MarketStatus) -> Vec<String> {
        status.sessions.iter().map(|s| format!("{}-{}", s.open, s.close)).collect()
    }

    #[test]
    fn regions_parse_in_any_case_and_unknown_ones_are_named() {
        assert_eq!(Region::parse("us"), Ok(Region::Us));
        assert_eq!(Region::parse("Global"), Ok(Region::Global));
        assert_eq!(Region::parse("fx"), Ok(Region::Fx));
        for region in Region::ALL {
            assert_eq!(Region::parse(region.code()), Ok(region));
        }
        let err = Region::parse("XX").unwrap_err();
        assert_eq!(err.to_string(), "unknown region `XX`; known regions: US, HK, CN, JP, GB, DE, GLOBAL, FX");
        assert!(Region::parse("").is_err());
        assert!(Region::parse(" US").is_err());
        let long = Region::parse(&"Z".repeat(1000)).unwrap_err().to_string();
        assert!(long.len() < 150, "{long}");
    }

    #[test]
    fn holiday_tables_are_sorted_weekdays_of_2025_and_2026() {
        for table in [US_HOLIDAYS, HK_HOLIDAYS, CN_HOLIDAYS, JP_HOLIDAYS, GB_HOLIDAYS, DE_HOLIDAYS] {
            assert!(table.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates (binary search relies on it)");
            for day in table {
                assert!(!matches!(day.weekday(), Weekday::Sat | Weekday::Sun), "{day} is a weekend day");
                assert!((2025..=2026).contains(&day.year()), "{day}");
            }
        }
    }

    #[test]
    fn us_open_after_the_dst_switch() {
        // 2026-03-10 is a Tuesday; New York moved to EDT (UTC-4) on Sunday 8 March.
        let s = status(Region::Us, at("2026-03-10T14:00:00Z"));
        assert_eq!(s.state, MarketState::Open);
        assert_eq!(s.timezone, "America/New_York");
        assert_eq!(s.local_time.to_rfc3339(), "2026-03-10T10:00:00-04:00");
        assert_eq!(sessions(&s), ["09:30-16:00"]);
        assert_eq!(s.next_close, Some(at("2026-03-10T20:00:00Z")));
        assert_eq!(s.next_open, Some(at("2026-03-11T13:30:00Z")));
    }

    #[test]
    fn us_pre_market_post_market_and_closed() {
        let pre = status(Region::Us, at("2026-03-10T12:00:00Z")); // 08:00 EDT
        assert_eq!(pre.state, MarketState::PreMarket);
        assert_eq!(pre.next_open, Some(at("2026-03-10T13:30:00Z")));
        assert_eq!(pre.next_close, Some(at("2026-03-10T20:00:00Z")));

        let post = status(Region::Us, at("2026-03-10T21:00:00Z")); // 17:00 EDT
        assert_eq!(post.state, MarketState::PostMarket);
        assert_eq!(post.next_open, Some(at("2026-03-11T13:30:00Z")));

        let night = status(Region::Us, at("2026-03-11T00:30:00Z")); // 20:30 EDT
        assert_eq!(night.state, MarketState::Closed);
        assert_eq!(night.local_time.to_rfc3339(), "2026-03-10T20:30:00-04:00");
        assert_eq!(sessions(&night), ["09:30-16:00"], "the local day is still a trading day");
        assert_eq!(night.next_open, Some(at("2026-03-11T13:30:00Z")));
        assert_eq!(night.next_close, Some(at("2026-03-11T20:00:00Z")));

        let early = status(Region::Us, at("2026-03-10T07:59:00Z")); // 03:59 EDT
        assert_eq!(early.state, MarketState::Closed);
    }

    #[test]
    fn session_bounds_are_open_at_the_start_and_closed_at_the_end() {
        assert_eq!(status(Region::Us, at("2026-03-10T13:30:00Z")).state, MarketState::Open);
        assert_eq!(status(Region::Us, at("2026-03-10T13:29:59Z")).state, MarketState::PreMarket);
        let closing = status(Region::Us, at("2026-03-10T20:00:00Z"));
        assert_eq!(closing.state, MarketState::PostMarket);
        assert_eq!(closing.next_close, Some(at("2026-03-11T20:00:00Z")), "strictly after the instant");
    }

    #[test]
    fn the_same_local_open_is_a_different_utc_instant_in_summer_and_winter() {
        // Monday 2 March 2026, 07:00 EST, and Monday 9 March, 08:00 EDT.
        let winter = status(Region::Us, at("2026-03-02T12:00:00Z"));
        let summer = status(Region::Us, at("2026-03-09T12:00:00Z"));
        assert_eq!(winter.next_open, Some(at("2026-03-02T14:30:00Z")));
        assert_eq!(summer.next_open, Some(at("2026-03-09T13:30:00Z")));
        // Across the switch: Friday's close (EST) to Monday's open (EDT).
        let weekend = status(Region::Us, at("2026-03-06T21:30:00Z"));
        assert_eq!(weekend.next_open, Some(at("2026-03-09T13:30:00Z")));
        // London's 08:00 open around the European switch (29 March 2026).
        assert_eq!(status(Region::Gb, at("2026-03-27T09:00:00Z")).next_open, Some(at("2026-03-30T07:00:00Z")));
        assert_eq!(status(Region::Gb, at("2026-03-27T08:00:00Z")).state, MarketState::Open);
        assert_eq!(status(Region::Gb, at("2026-03-30T07:00:00Z")).state, MarketState::Open);
        assert_eq!(status(Region::Gb, at("2026-03-30T06:59:00Z")).state, MarketState::Closed);
    }

    #[test]
    fn weekends_close_until_monday() {
        let saturday = status(Region::Us, at("2026-03-14T15:00:00Z"));
        assert_eq!(saturday.state, MarketState::Closed);
        assert!(saturday.sessions.is_empty());
        assert_eq!(saturday.next_open, Some(at("2026-03-16T13:30:00Z")));
        assert_eq!(saturday.next_close, Some(at("2026-03-16T20:00:00Z")));
        let hk_sunday = status(Region::Hk, at("2026-03-15T03:00:00Z"));
        assert_eq!(hk_sunday.state, MarketState::Closed);
        assert_eq!(hk_sunday.next_open, Some(at("2026-03-16T01:30:00Z")));
    }

    #[test]
    fn holidays_close_for_the_day() {
        let christmas = status(Region::Us, at("2026-12-25T15:00:00Z"));
        assert_eq!(christmas.state, MarketState::Closed);
        assert!(christmas.sessions.is_empty());
        assert_eq!(christmas.next_open, Some(at("2026-12-28T14:30:00Z")));
        assert_eq!(christmas.next_close, Some(at("2026-12-28T21:00:00Z")));
        // The eve of a holiday: the next open skips it.
        let eve = status(Region::Us, at("2026-12-24T22:00:00Z"));
        assert_eq!(eve.next_open, Some(at("2026-12-28T14:30:00Z")));
        // CN's Spring Festival 2026: closed 16–23 February, back on Tuesday the 24th.
        let festival = status(Region::Cn, at("2026-02-18T02:00:00Z"));
        assert_eq!(festival.state, MarketState::Closed);
        assert_eq!(festival.next_open, Some(at("2026-02-24T01:30:00Z")));
        // HK's Lunar New Year: 17–19 February 2026; Friday the 20th trades.
        assert_eq!(status(Region::Hk, at("2026-02-18T02:00:00Z")).state, MarketState::Closed);
        assert_eq!(status(Region::Hk, at("2026-02-20T02:00:00Z")).state, MarketState::Open);
    }

    #[test]
    fn hong_kong_pre_opening_and_lunch_break() {
        let pre = status(Region::Hk, at("2026-03-10T01:15:00Z")); // 09:15 HKT
        assert_eq!(pre.state, MarketState::PreMarket);
        let lunch = status(Region::Hk, at("2026-03-10T04:30:00Z")); // 12:30 HKT
        assert_eq!(lunch.state, MarketState::LunchBreak);
        assert_eq!(lunch.timezone, "Asia/Hong_Kong");
        assert_eq!(lunch.local_time.to_rfc3339(), "2026-03-10T12:30:00+08:00");
        assert_eq!(sessions(&lunch), ["09:30-12:00", "13:00-16:00"]);
        assert_eq!(lunch.next_open, Some(at("2026-03-10T05:00:00Z")));
        assert_eq!(lunch.next_close, Some(at("2026-03-10T08:00:00Z")));
        let afternoon = status(Region::Hk, at("2026-03-10T07:00:00Z"));
        assert_eq!(afternoon.state, MarketState::Open);
        assert_eq!(status(Region::Hk, at("2026-03-10T08:00:00Z")).state, MarketState::Closed);
    }

    #[test]
    fn china_auction_sessions_and_lunch() {
        assert_eq!(status(Region::Cn, at("2026-03-10T01:20:00Z")).state, MarketState::PreMarket); // 09:20
        let open = status(Region::Cn, at("2026-03-10T02:00:00Z")); // 10:00 CST
        assert_eq!(open.state, MarketState::Open);
        assert_eq!(open.timezone, "Asia/Shanghai");
        assert_eq!(sessions(&open), ["09:30-11:30", "13:00-15:00"]);
        assert_eq!(open.next_close, Some(at("2026-03-10T03:30:00Z")));
        let lunch = status(Region::Cn, at("2026-03-10T04:00:00Z")); // 12:00 CST
        assert_eq!(lunch.state, MarketState::LunchBreak);
        assert_eq!(lunch.next_open, Some(at("2026-03-10T05:00:00Z")));
        assert_eq!(lunch.next_close, Some(at("2026-03-10T07:00:00Z")));
    }

    #[test]
    fn tokyo_lunch_and_the_longer_afternoon() {
        let lunch = status(Region::Jp, at("2026-03-10T02:45:00Z")); // 11:45 JST
        assert_eq!(lunch.state, MarketState::LunchBreak);
        assert_eq!(lunch.next_open, Some(at("2026-03-10T03:30:00Z")));
        assert_eq!(lunch.next_close, Some(at("2026-03-10T06:30:00Z")));
        assert_eq!(status(Region::Jp, at("2026-03-10T06:15:00Z")).state, MarketState::Open); // 15:15 JST
        assert_eq!(status(Region::Jp, at("2026-03-10T06:30:00Z")).state, MarketState::Closed);
    }

    #[test]
    fn europe() {
        let frankfurt = status(Region::De, at("2026-07-01T15:00:00Z")); // 17:00 CEST
        assert_eq!(frankfurt.state, MarketState::Open);
        assert_eq!(frankfurt.next_close, Some(at("2026-07-01T15:30:00Z")));
        assert_eq!(status(Region::De, at("2026-12-24T10:00:00Z")).state, MarketState::Closed);
        let london = status(Region::Gb, at("2026-07-01T15:29:00Z")); // 16:29 BST
        assert_eq!(london.state, MarketState::Open);
        assert_eq!(london.local_time.to_rfc3339(), "2026-07-01T16:29:00+01:00");
    }

    #[test]
    fn crypto_never_closes() {
        for instant in ["2026-03-14T15:00:00Z", "2026-12-25T00:00:00Z", "2026-03-08T07:00:00Z"] {
            let s = status(Region::Global, at(instant));
            assert_eq!(s.state, MarketState::Open);
            assert_eq!(s.timezone, "UTC");
            assert_eq!(sessions(&s), ["00:00-24:00"]);
            assert_eq!((s.next_open, s.next_close), (None, None));
        }
    }

    #[test]
    fn fx_trades_from_sunday_evening_to_friday_evening_new_york_time() {
        let saturday = status(Region::Fx, at("2026-03-14T15:00:00Z"));
        assert_eq!(saturday.state, MarketState::Closed);
        assert!(saturday.sessions.is_empty());
        assert_eq!(saturday.next_open, Some(at("2026-03-15T21:00:00Z"))); // Sunday 17:00 EDT
        assert_eq!(saturday.next_close, Some(at("2026-03-20T21:00:00Z")));

        let sunday = status(Region::Fx, at("2026-03-15T21:00:00Z"));
        assert_eq!(sunday.state, MarketState::Open);
        assert_eq!(sessions(&sunday), ["17:00-24:00"]);

        let wednesday = status(Region::Fx, at("2026-03-11T04:00:00Z")); // midnight EDT
        assert_eq!(wednesday.state, MarketState::Open);
        assert_eq!(sessions(&wednesday), ["00:00-24:00"]);
        assert_eq!(wednesday.next_close, Some(at("2026-03-13T21:00:00Z")), "midnights are not closes");
        assert_eq!(wednesday.next_open, Some(at("2026-03-15T21:00:00Z")));

        assert_eq!(status(Region::Fx, at("2026-03-13T20:59:00Z")).state, MarketState::Open);
        let friday = status(Region::Fx, at("2026-03-13T21:00:00Z"));
        assert_eq!(friday.state, MarketState::Closed);
        assert_eq!(sessions(&friday), ["00:00-17:00"]);
        // In winter the week opens an hour later in UTC.
        assert_eq!(status(Region::Fx, at("2026-01-10T12:00:00Z")).next_open, Some(at("2026-01-11T22:00:00Z")));
    }

    #[test]
    fn beyond_the_tables_weekdays_trade() {
        let s = status(Region::Us, at("2030-01-04T12:00:00Z")); // a Friday, 07:00 EST
        assert_eq!(s.state, MarketState::PreMarket);
        assert_eq!(s.next_open, Some(at("2030-01-04T14:30:00Z")));
    }

    #[test]
    fn clocks_handle_dst_gaps_and_overlaps() {
        let ny = Tz::America__New_York;
        // 02:30 does not exist on 8 March 2026: an hour later, past the gap.
        assert_eq!(hm(2, 30).on(date(2026, 3, 8), ny), Some(at("2026-03-08T07:30:00Z")));
        // 01:30 happens twice on 1 November 2026: the earlier one (EDT).
        assert_eq!(hm(1, 30).on(date(2026, 11, 1), ny), Some(at("2026-11-01T05:30:00Z")));
        assert_eq!(Clock::END_OF_DAY.on(date(2026, 3, 10), ny), Some(at("2026-03-11T04:00:00Z")));
        assert_eq!(Clock::END_OF_DAY.to_string(), "24:00");
        assert_eq!(hm(9, 5).to_string(), "09:05");
    }
}
