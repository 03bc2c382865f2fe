//! The price path: a seeded Brownian bridge refined from days to hours, minutes, seconds
//! and trades, so bars of every interval agree with each other. Only the market's sessions
//! trade: a piece of time outside them is a dead bar (flat at the last price, no volume) that
//! aggregation skips.

use std::collections::HashMap;

use super::{profile::*, subdivide::*, *};
use crate::market::calendar;

/// How far back to look for a previous trading day (longer than any closure on record: CN's
/// Spring Festival and National Day weeks are nine days with their weekends).
const LOOKBACK_DAYS: i64 = 40;

/// A bar before rounding: prices as floats, volume in `10^-volume_dp` units, turnover in cents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Bar {
    pub(super) open: f64,
    pub(super) high: f64,
    pub(super) low: f64,
    pub(super) close: f64,
    pub(super) volume: u128,
    pub(super) turnover: u128,
    /// Whether any of its time is inside a session: a dead bar is not served and not
    /// aggregated.
    pub(super) live: bool,
}

impl Bar {
    /// A piece of time the market does not trade: flat at the last price.
    pub(super) fn dead(price: f64) -> Self {
        Self { open: price, high: price, low: price, close: price, volume: 0, turnover: 0, live: false }
    }

    /// This bar followed by `next`.
    pub(super) fn merge(self, next: &Bar) -> Self {
        Self {
            open: self.open,
            high: self.high.max(next.high),
            low: self.low.min(next.low),
            close: next.close,
            volume: self.volume + next.volume,
            turnover: self.turnover + next.turnover,
            live: true,
        }
    }
}

/// The children of one bar, remembered while a request walks through them.
#[derive(Default)]
pub(super) struct Level {
    pub(super) key: Option<i64>,
    pub(super) bars: Vec<Bar>,
}

/// One instrument's path, with the most recently used span and splits cached for the length of
/// one request (requests walk through time in order).
pub(super) struct Path<'a> {
    pub(super) profile: &'a Profile,
    /// Which span `span_values` holds: log offsets from the level at its `SPAN + 1` midnights.
    pub(super) span: Option<i64>,
    pub(super) span_values: Vec<f64>,
    /// How many midnights of an uncached span have been looked up one by one.
    pub(super) span_lookups: (Option<i64>, u32),
    pub(super) hours: Level,
    pub(super) minutes: Level,
    pub(super) seconds: Level,
    /// The session intervals (UTC seconds) of each UTC day looked at.
    sessions: HashMap<i64, Vec<(i64, i64)>>,
}

impl<'a> Path<'a> {
    pub(super) fn new(profile: &'a Profile) -> Self {
        Self {
            profile,
            span: None,
            span_values: Vec::new(),
            span_lookups: (None, 0),
            hours: Level::default(),
            minutes: Level::default(),
            seconds: Level::default(),
            sessions: HashMap::new(),
        }
    }

    /// The parts of UTC day `day` (seconds since the epoch, `[from, to)`, in order) inside the
    /// market's regular sessions; none before the listing day. A UTC day meets the local days
    /// either side of it (FX's day is New York's), so three local days are asked.
    pub(super) fn sessions(&mut self, day: i64) -> &[(i64, i64)] {
        let profile = self.profile;
        self.sessions.entry(day).or_insert_with(|| {
            if day < profile.listed {
                return Vec::new();
            }
            let (start, end) = (day * DAY, day * DAY + DAY);
            let mut parts: Vec<(i64, i64)> = (day - 1..=day + 1)
                .flat_map(|local| calendar::sessions_on(profile.market, date_of(local)))
                .map(|(open, close)| (open.timestamp().max(start), close.timestamp().min(end)))
                .filter(|(open, close)| open < close)
                .collect();
            parts.sort_unstable();
            parts.dedup();
            parts
        })
    }

    /// Whether the market trades at all on UTC day `day`.
    pub(super) fn is_live(&mut self, day: i64) -> bool {
        !self.sessions(day).is_empty()
    }

    /// Seconds of `[from, to)` inside a session.
    pub(super) fn live_seconds(&mut self, from: i64, to: i64) -> i64 {
        let day = from.div_euclid(DAY);
        self.sessions(day).iter().map(|&(open, close)| (close.min(to) - open.max(from)).max(0)).sum()
    }

    /// The last UTC day before `day` on which the market traded, if one is near.
    pub(super) fn previous_live(&mut self, day: i64) -> Option<i64> {
        (1..=LOOKBACK_DAYS).map(|n| day - n).find(|&d| self.is_live(d))
    }

    /// The end of the last session time at or before `at`: `at` itself while the market
    /// trades, else the last close (`None` if it has not traded for `LOOKBACK_DAYS`).
    pub(super) fn last_trading_instant(&mut self, at: i64) -> Option<i64> {
        let today = (at - 1).div_euclid(DAY);
        (0..=LOOKBACK_DAYS).map(|n| today - n).find_map(|day| {
            self.sessions(day).iter().rev().find(|(open, _)| *open < at).map(|&(_, close)| close.min(at))
        })
    }

    /// The aggregate of the live pieces of seconds `[from, to)`, from the coarsest whole
    /// pieces: days, hours, minutes, seconds. `None` if the market does not trade in it.
    pub(super) fn range(&mut self, from: i64, to: i64) -> Option<Bar> {
        let mut total: Option<Bar> = None;
        let mut at = from;
        while at < to {
            let left = to - at;
            // A day without a session is skipped whole, without computing anything.
            if !self.is_live(at.div_euclid(DAY)) {
                at = (at.div_euclid(DAY) + 1) * DAY;
                continue;
            }
            let (bar, len) = if at.rem_euclid(DAY) == 0 && left >= DAY {
                (self.day_bar(at.div_euclid(DAY)), DAY)
            } else if at.rem_euclid(HOUR) == 0 && left >= HOUR {
                (self.hour_bar(at.div_euclid(HOUR)), HOUR)
            } else if at.rem_euclid(MINUTE) == 0 && left >= MINUTE {
                (self.minute_bar(at.div_euclid(MINUTE)), MINUTE)
            } else {
                (self.second_bar(at), 1)
            };
            if bar.live {
                total = Some(match total {
                    Some(total) => total.merge(&bar),
                    None => bar,
                });
            }
            at += len;
        }
        total
    }

    /// The price at the start of second `at`.
    pub(super) fn price_at(&mut self, at: i64) -> f64 {
        self.second_bar(at).open
    }

    /// The log price at the midnight starting day `day`: the trend plus the walk around it.
    pub(super) fn log_price(&mut self, day: i64) -> f64 {
        self.profile.trend(day) + self.midnight(day)
    }

    /// The log offset at midnight starting day `day`. A few look-ups (a quote) descend the
    /// bisection tree; more in the same span (a range of bars) compute the whole span once.
    /// Both give the same bits: the same operations on the same operands.
    pub(super) fn midnight(&mut self, day: i64) -> f64 {
        let span = day.div_euclid(SPAN);
        let offset = day.rem_euclid(SPAN) as usize;
        if self.span != Some(span) {
            if self.span_lookups.0 == Some(span) {
                self.span_lookups.1 += 1;
            } else {
                self.span_lookups = (Some(span), 1);
            }
            if self.span_lookups.1 <= 6 {
                return self.descend(span, offset);
            }
            self.span_values = self.fill_span(span);
            self.span = Some(span);
        }
        self.span_values[offset]
    }

    /// The anchor starting span `span`: the log offset at its first midnight.
    pub(super) fn anchor(&self, span: i64) -> f64 {
        let p = self.profile;
        p.vol * (SPAN as f64).sqrt() / 2.0 * Rng::new(mix(p.seed, TAG_ANCHOR, span)).gauss()
    }

    /// The midpoint of an interval `len` days long of span `span`, given its ends: drawn from its
    /// conditional law (mean of the ends, variance σ²·len/4), seeded by the day.
    pub(super) fn midpoint(&self, span: i64, mid: usize, len: usize, start_value: f64, end_value: f64) -> f64 {
        let p = self.profile;
        let sd = p.vol * (len as f64 / 4.0).sqrt();
        let draw = Rng::new(mix(p.seed, TAG_NODE, span * SPAN + mid as i64)).gauss();
        0.5 * (start_value + end_value) + sd * draw
    }

    /// One midnight of a span, by descending its bisection tree (9 draws).
    pub(super) fn descend(&self, span: i64, offset: usize) -> f64 {
        let (mut start, mut end) = (0, SPAN as usize);
        let (mut start_value, mut end_value) = (self.anchor(span), self.anchor(span + 1));
        if offset == 0 {
            return start_value;
        }
        loop {
            let len = end - start;
            let mid = start + len / 2;
            let value = self.midpoint(span, mid, len, start_value, end_value);
            if offset == mid || len <= 2 {
                return value;
            }
            if offset < mid {
                (end, end_value) = (mid, value);
            } else {
                (start, start_value) = (mid, value);
            }
        }
    }

    /// A whole span: a Brownian bridge between two anchors, by bisection.
    pub(super) fn fill_span(&self, span: i64) -> Vec<f64> {
        let n = SPAN as usize;
        let mut values = vec![0.0; n + 1];
        values[0] = self.anchor(span);
        values[n] = self.anchor(span + 1);
        let mut len = n;
        while len >= 2 {
            for start in (0..n).step_by(len) {
                values[start + len / 2] = self.midpoint(span, start + len / 2, len, values[start], values[start + len]);
            }
            len /= 2;
        }
        values
    }

    /// Day `day`'s bar, as traded (prices × the splits to come, on the grid; volume in the
    /// shares of the day). A trading day runs from the close of the trading day before it (so
    /// the first session after a weekend carries the weekend's move) to its own midnight; a day
    /// without a session is dead at the last close.
    pub(super) fn day_bar(&mut self, day: i64) -> Bar {
        let p = self.profile;
        if !self.is_live(day) {
            return match self.previous_live(day) {
                Some(before) => Bar::dead(self.day_bar(before).close),
                None => Bar::dead(p.grid.snap(day, p.level * self.log_price(day).exp() * p.multiple(day))),
            };
        }
        let from = self.previous_live(day).map_or(day, |before| before + 1);
        let (x0, x1) = (self.log_price(from), self.log_price(day + 1));
        let mut rng = Rng::new(mix(p.seed, TAG_DAY, day));
        // The move's volatility grows with the days it spans.
        let sigma = p.vol * ((day + 1 - from) as f64).sqrt();
        let up = bridge_excursion((x1 - x0).abs(), sigma, rng.uniform());
        let down = bridge_excursion((x1 - x0).abs(), sigma, rng.uniform());
        let multiple = p.multiple(day);
        let price = |x: f64| p.level * x.exp() * multiple;
        let (open, close) = (price(x0), price(x1));
        let high = price(x0.max(x1) + up).max(open.max(close));
        let low = price(x0.min(x1) - down).min(open.min(close));
        // Busier on wide days.
        let width = (x0.max(x1) + up - x0.min(x1) + down) / (1.6 * p.vol);
        let volume = p.daily_volume * (0.3 * rng.gauss() - 0.045).exp() * (0.5 + 0.5 * width.min(4.0)) / multiple;
        let volume = (volume.round() as u128).max(1);
        let snap = |x: f64| p.grid.snap(day, x);
        let (open, high, low, close) = (snap(open), snap(high), snap(low), snap(close));
        let typical = (open + high + low + close) / 4.0;
        let turnover = (volume as f64 * typical * p.turnover_per_unit).round() as u128;
        Bar { open, high, low, close, volume, turnover, live: true }
    }

    pub(super) fn hour_bar(&mut self, hour: i64) -> Bar {
        let day = hour.div_euclid(24);
        if self.hours.key != Some(day) {
            let parent = self.day_bar(day);
            self.hours.bars = if parent.live {
                let activity = self.profile.hours;
                let weights: Vec<f64> = (0..24)
                    .map(|h| {
                        let from = (day * 24 + h) * HOUR;
                        self.live_seconds(from, from + HOUR) as f64 / HOUR as f64 * activity[h as usize]
                    })
                    .collect();
                self.split_live(&parent, &weights, day, mix(self.profile.seed, TAG_HOURS, day))
            } else {
                vec![parent; 24]
            };
            self.hours.key = Some(day);
        }
        self.hours.bars[hour.rem_euclid(24) as usize]
    }

    pub(super) fn minute_bar(&mut self, minute: i64) -> Bar {
        let hour = minute.div_euclid(60);
        if self.minutes.key != Some(hour) {
            let parent = self.hour_bar(hour);
            self.minutes.bars = if parent.live {
                let weights: Vec<f64> = (0..60)
                    .map(|m| {
                        let from = (hour * 60 + m) * MINUTE;
                        self.live_seconds(from, from + MINUTE) as f64
                    })
                    .collect();
                let day = hour.div_euclid(24);
                self.split_live(&parent, &weights, day, mix(self.profile.seed, TAG_MINUTES, hour))
            } else {
                vec![parent; 60]
            };
            self.minutes.key = Some(hour);
        }
        self.minutes.bars[minute.rem_euclid(60) as usize]
    }

    pub(super) fn second_bar(&mut self, second: i64) -> Bar {
        let minute = second.div_euclid(60);
        if self.seconds.key != Some(minute) {
            let parent = self.minute_bar(minute);
            self.seconds.bars = if parent.live {
                let weights: Vec<f64> =
                    (0..60).map(|s| self.live_seconds(minute * 60 + s, minute * 60 + s + 1) as f64).collect();
                let day = minute.div_euclid(24 * 60);
                self.split_live(&parent, &weights, day, mix(self.profile.seed, TAG_SECONDS, minute))
            } else {
                vec![parent; 60]
            };
            self.seconds.key = Some(minute);
        }
        self.seconds.bars[second.rem_euclid(60) as usize]
    }

    /// `subdivide` over the children with weight (time in session), the others dead at the
    /// price before them; every price on the grid of day `day`.
    fn split_live(&self, parent: &Bar, weights: &[f64], day: i64, seed: u64) -> Vec<Bar> {
        let grid = self.profile.grid;
        let live: Vec<f64> = weights.iter().copied().filter(|w| *w > 0.0).collect();
        let mut children = subdivide(parent, &live, seed, &|x| grid.snap(day, x)).into_iter();
        let mut price = parent.open;
        weights
            .iter()
            .map(|&w| match if w > 0.0 { children.next() } else { None } {
                Some(child) => {
                    price = child.close;
                    child
                }
                None => Bar::dead(price),
            })
            .collect()
    }
}

/// One trade, before rounding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Trade {
    pub(super) millis: i64,
    pub(super) price: f64,
    /// The price of the trade before, or the price the second opened at for its first trade.
    pub(super) previous: f64,
    pub(super) volume: u128,
}

/// The trades of one second: 3 to 5 (fewer if its volume is smaller), along a path through the
/// second's open, its extremes and its close, the last at its close; volumes sum to the
/// second's volume. Their times are spread through the second (sorted uniform draws, to the
/// millisecond), prices on the grid of day `day`.
pub(super) fn second_trades(profile: &Profile, second: i64, bar: &Bar) -> Vec<Trade> {
    if bar.volume == 0 || !bar.live {
        return Vec::new();
    }
    let day = second.div_euclid(DAY);
    let mut rng = Rng::new(mix(profile.seed, TAG_TICKS, second));
    let count = (3 + rng.below(3) as u128).min(bar.volume) as usize;
    let (first, second_extreme) = if rng.below(2) == 0 { (bar.high, bar.low) } else { (bar.low, bar.high) };
    let knots = [bar.open, first, second_extreme, bar.close];
    let mut millis: Vec<i64> = (0..count).map(|_| rng.below(1000) as i64).collect();
    millis.sort_unstable();
    // Distinct times, in order (a trade feed never repeats a timestamp): nudge ties apart,
    // forward from the first, then back from the last if that ran past the second.
    for k in 1..count {
        millis[k] = millis[k].max(millis[k - 1] + 1);
    }
    for k in (0..count).rev() {
        let limit = 999 - (count - 1 - k) as i64;
        millis[k] = millis[k].min(limit);
    }
    let volume_weights: Vec<f64> = (0..count).map(|_| (0.7 * rng.gauss()).exp()).collect();
    let volumes = split(bar.volume - count as u128, &volume_weights);
    let mut previous = bar.open;
    millis
        .iter()
        .zip(volumes)
        .enumerate()
        .map(|(k, (&ms, volume))| {
            // The k-th trade is (k+1)/count of the way along open → extreme → extreme → close.
            let along = 3.0 * (k + 1) as f64 / count as f64;
            let segment = (along as usize).min(2);
            let part = along - segment as f64;
            let price = knots[segment] + (knots[segment + 1] - knots[segment]) * part;
            let price = profile.grid.snap(day, price.max(bar.low).min(bar.high));
            let trade = Trade { millis: second * 1000 + ms, price, previous, volume: volume + 1 };
            previous = price;
            trade
        })
        .collect()
}
