//! Spot FX's week: Sunday 17:00 to Friday 17:00, New York time, around the clock; no holidays
//! (the interbank market's few closures, 25 December and 1 January, are not modelled).

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use super::{Clock, Computed, MarketState, Session};

/// FX trades from Sunday 17:00 to Friday 17:00 New York time, around the clock.
pub(super) fn fx(tz: Tz, at: DateTime<Utc>, today: NaiveDate) -> Computed {
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
pub(super) fn fx_sessions(date: NaiveDate) -> Vec<Session> {
    match date.weekday() {
        Weekday::Sat => Vec::new(),
        Weekday::Sun => vec![Session::new(FX_WEEK_OPENS, Clock::END_OF_DAY)],
        Weekday::Fri => vec![Session::new(Clock::MIDNIGHT, FX_WEEK_CLOSES)],
        _ => vec![Session::new(Clock::MIDNIGHT, Clock::END_OF_DAY)],
    }
}
