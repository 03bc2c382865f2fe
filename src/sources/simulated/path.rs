//! The price path: a seeded Brownian bridge refined from days to hours, minutes, seconds
//! and trades, so bars of every interval agree with each other.

use super::{profile::*, *};

/// A bar before rounding: prices as floats, volume in `10^-volume_dp` units, turnover in cents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Bar {
    pub(super) open: f64,
    pub(super) high: f64,
    pub(super) low: f64,
    pub(super) close: f64,
    pub(super) volume: u128,
    pub(super) turnover: u128,
}

impl Bar {
    pub(super) fn flat(price: f64) -> Self {
        Self { open: price, high: price, low: price, close: price, volume: 0, turnover: 0 }
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
        }
    }

    /// The aggregate of seconds `[from, to)`, from the coarsest whole pieces: days, hours,
    /// minutes, seconds. `None` if the range is empty.
    pub(super) fn range(&mut self, from: i64, to: i64) -> Option<Bar> {
        let mut total: Option<Bar> = None;
        let mut at = from;
        while at < to {
            let left = to - at;
            let (bar, len) = if at.rem_euclid(DAY) == 0 && left >= DAY {
                (self.day_bar(at.div_euclid(DAY)), DAY)
            } else if at.rem_euclid(HOUR) == 0 && left >= HOUR {
                (self.hour_bar(at.div_euclid(HOUR)), HOUR)
            } else if at.rem_euclid(MINUTE) == 0 && left >= MINUTE {
                (self.minute_bar(at.div_euclid(MINUTE)), MINUTE)
            } else {
                (self.second_bar(at), 1)
            };
            total = Some(match total {
                Some(total) => total.merge(&bar),
                None => bar,
            });
            at += len;
        }
        total
    }

    /// The price at the start of second `at`.
    pub(super) fn price_at(&mut self, at: i64) -> f64 {
        self.second_bar(at).open
    }

    /// Log offsets at midnight starting day `day` and the next.
    pub(super) fn day_bounds(&mut self, day: i64) -> (f64, f64) {
        (self.midnight(day), self.midnight(day + 1))
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

    pub(super) fn day_bar(&mut self, day: i64) -> Bar {
        let (x0, x1) = self.day_bounds(day);
        let p = self.profile;
        let mut rng = Rng::new(mix(p.seed, TAG_DAY, day));
        let up = bridge_excursion((x1 - x0).abs(), p.vol, rng.uniform());
        let down = bridge_excursion((x1 - x0).abs(), p.vol, rng.uniform());
        let (open, close) = (p.level * x0.exp(), p.level * x1.exp());
        let high = (p.level * (x0.max(x1) + up).exp()).max(open.max(close));
        let low = (p.level * (x0.min(x1) - down).exp()).min(open.min(close));
        // Busier on wide days.
        let width = (x0.max(x1) + up - x0.min(x1) + down) / (1.6 * p.vol);
        let volume = p.daily_volume * (0.3 * rng.gauss() - 0.045).exp() * (0.5 + 0.5 * width.min(4.0));
        let volume = (volume.round() as u128).max(1);
        let typical = (open + high + low + close) / 4.0;
        let turnover = (volume as f64 * typical * p.turnover_per_unit).round() as u128;
        Bar { open, high, low, close, volume, turnover }
    }

    pub(super) fn hour_bar(&mut self, hour: i64) -> Bar {
        let day = hour.div_euclid(24);
        if self.hours.key != Some(day) {
            let parent = self.day_bar(day);
            self.hours.bars = subdivide(&parent, &self.profile.hours, mix(self.profile.seed, TAG_HOURS, day));
            self.hours.key = Some(day);
        }
        self.hours.bars[hour.rem_euclid(24) as usize]
    }

    pub(super) fn minute_bar(&mut self, minute: i64) -> Bar {
        let hour = minute.div_euclid(60);
        if self.minutes.key != Some(hour) {
            let parent = self.hour_bar(hour);
            self.minutes.bars = subdivide(&parent, &[1.0; 60], mix(self.profile.seed, TAG_MINUTES, hour));
            self.minutes.key = Some(hour);
        }
        self.minutes.bars[minute.rem_euclid(60) as usize]
    }

    pub(super) fn second_bar(&mut self, second: i64) -> Bar {
        let minute = second.div_euclid(60);
        if self.seconds.key != Some(minute) {
            let parent = self.minute_bar(minute);
            self.seconds.bars = subdivide(&parent, &[1.0; 60], mix(self.profile.seed, TAG_SECONDS, minute));
            self.seconds.key = Some(minute);
        }
        self.seconds.bars[second.rem_euclid(60) as usize]
    }
}

/// How far a Brownian bridge over a move of `distance`, with volatility `sigma`, rises above its
/// higher end: a draw from the exact law, P(excursion > x) = exp(-2x(x + distance)/σ²), by
/// inversion of the uniform `u`.
pub(super) fn bridge_excursion(distance: f64, sigma: f64, u: f64) -> f64 {
    0.5 * ((distance * distance - 2.0 * sigma * sigma * u.ln()).sqrt() - distance)
}

/// `excursion` beyond `from`, squeezed to stay short of `limit` (smoothly, so small excursions
/// are kept nearly as drawn).
pub(super) fn squeeze(from: f64, limit: f64, excursion: f64) -> f64 {
    let room = limit - from;
    if room > 0.0 && excursion > 0.0 { room * -(-excursion / room).exp_m1() } else { 0.0 }
}

/// `excursion` (≥ 0), kept as it is up to 80% of `room` and squeezed smoothly beyond, so that it
/// stays short of `room`.
pub(super) fn fit_within(excursion: f64, room: f64) -> f64 {
    if room <= 0.0 {
        return 0.0;
    }
    let knee = 0.8 * room;
    if excursion <= knee {
        return excursion;
    }
    let soft = room - knee;
    knee + soft * -(-(excursion - knee) / soft).exp_m1()
}

/// Splits `parent` into `weights.len()` consecutive children whose aggregate is exactly the
/// parent: the first opens at its open, the last closes at its close, each opens at the
/// previous close, one reaches its high and one its low (the others stay inside), and volumes
/// and turnovers sum to its own. `weights` are the children's relative activity (variance and
/// volume).
pub(super) fn subdivide(parent: &Bar, weights: &[f64], seed: u64) -> Vec<Bar> {
    let n = weights.len();
    if n <= 1 {
        return vec![*parent];
    }
    let mut rng = Rng::new(seed);
    let total: f64 = weights.iter().sum();
    // A random walk in activity time, turned into a bridge from 0 to 0.
    let mut walk = vec![0.0; n + 1];
    let mut time = vec![0.0; n + 1];
    for (i, &weight) in weights.iter().enumerate() {
        walk[i + 1] = walk[i] + rng.gauss() * weight.sqrt();
        time[i + 1] = time[i] + weight / total;
    }
    let Bar { open, high, low, close, .. } = *parent;
    let line = |i: usize| open + (close - open) * time[i];
    let bridge = |i: usize| walk[i] - walk[n] * time[i];
    // The bridge around the line from open to close, with the volatility the parent's range
    // suggests (the range of a Brownian motion is about 1.6 σ).
    let scale = 1.1 * (high - low) / (1.6 * total.sqrt());
    let mut path: Vec<f64> = (0..=n).map(|i| line(i) + scale * bridge(i)).collect();
    // Pin the path close to the parent's high and low (a child's typical wick away) at times
    // drawn like a bridge's extremes: early if the open is near the extreme, late if the close
    // is, anywhere otherwise, in activity time (busy hours see most extremes). The stretches in
    // between shift linearly, keeping their shape.
    let range = (high - low).max(1e-300);
    let when = |near_open: f64, near_close: f64, u: f64| {
        let t = u.powf((near_close / near_open.max(1e-300)).clamp(0.1, 10.0));
        time.iter().position(|&at| at >= t).unwrap_or(n).clamp(1, n - 1)
    };
    let peak = when((high - open) / range, (high - close) / range, rng.uniform());
    let mut trough = when((open - low) / range, (close - low) / range, rng.uniform());
    if trough == peak {
        trough = if peak + 1 < n {
            peak + 1
        } else if peak > 1 {
            peak - 1
        } else {
            peak // two children: one inner point, no room for two pins
        };
    }
    let wick = range / (1.6 * (n as f64).sqrt());
    let mut pins = vec![(0, 0.0), (n, 0.0)];
    if trough != peak {
        pins.push((peak, high - 0.5 * wick * rng.uniform() - path[peak]));
        pins.push((trough, low + 0.5 * wick * rng.uniform() - path[trough]));
    }
    pins.sort_by_key(|&(i, _)| i);
    for pair in pins.windows(2) {
        let ((from, shift_from), (to, shift_to)) = (pair[0], pair[1]);
        for (i, point) in path.iter_mut().enumerate().take(to).skip(from + 1) {
            let along = (time[i] - time[from]) / (time[to] - time[from]).max(1e-300);
            *point += shift_from + (shift_to - shift_from) * along;
        }
        path[to] += shift_to;
    }
    // Squeeze what would leave the range back into it, smoothly and keeping the order of prices.
    let middle = 0.5 * (high + low);
    for point in path.iter_mut().take(n).skip(1) {
        let squeezed = if *point > middle {
            middle + fit_within(*point - middle, high - middle)
        } else {
            middle - fit_within(middle - *point, middle - low)
        };
        *point = squeezed.max(low).min(high);
    }
    path[0] = open;
    path[n] = close;

    // Which children touch the parent's extremes: those whose bodies come closest.
    let mut high_child = 0;
    let mut low_child = 0;
    for i in 1..n {
        if path[i].max(path[i + 1]) > path[high_child].max(path[high_child + 1]) {
            high_child = i;
        }
        if path[i].min(path[i + 1]) < path[low_child].min(path[low_child + 1]) {
            low_child = i;
        }
    }
    let mean_step = path.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / n as f64;
    let mean_weight = total / n as f64;
    let mut children = Vec::with_capacity(n);
    let mut volume_weights = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b) = (path[i], path[i + 1]);
        let (top, bottom) = (a.max(b), a.min(b));
        let sigma = 1.25 * mean_step * (weights[i] / mean_weight).sqrt();
        let up = bridge_excursion((b - a).abs(), sigma, rng.uniform());
        let down = bridge_excursion((b - a).abs(), sigma, rng.uniform());
        let child_high = if i == high_child { high } else { (top + squeeze(top, high, up)).max(top).min(high) };
        let child_low = if i == low_child { low } else { (bottom - squeeze(low, bottom, down)).min(bottom).max(low) };
        let width = if sigma > 0.0 { ((child_high - child_low) / (1.6 * sigma)).min(3.0) } else { 1.0 };
        volume_weights.push(weights[i] * (0.35 * rng.gauss()).exp() * (0.6 + 0.4 * width));
        children.push(Bar { open: a, high: child_high, low: child_low, close: b, volume: 0, turnover: 0 });
    }
    for (child, volume) in children.iter_mut().zip(split(parent.volume, &volume_weights)) {
        child.volume = volume;
    }
    let value_weights: Vec<f64> =
        children.iter().map(|c| c.volume as f64 * (c.open + c.high + c.low + c.close) / 4.0).collect();
    for (child, turnover) in children.iter_mut().zip(split(parent.turnover, &value_weights)) {
        child.turnover = turnover;
    }
    children
}

/// Splits `total` into integer parts proportional to `weights`, summing exactly to `total`
/// (largest remainders get the units left over). Zero weights get zero, unless all are zero.
pub(super) fn split(total: u128, weights: &[f64]) -> Vec<u128> {
    let max = weights.iter().copied().filter(|w| w.is_finite()).fold(0.0, f64::max);
    let quanta: Vec<u128> = if max > 0.0 {
        weights
            .iter()
            .map(|&w| if w.is_finite() && w > 0.0 { ((w / max * 4_294_967_296.0) as u128).max(1) } else { 0 })
            .collect()
    } else {
        vec![1; weights.len()]
    };
    let sum: u128 = quanta.iter().sum();
    let mut parts: Vec<u128> = quanta.iter().map(|&q| total * q / sum).collect();
    let mut left = total - parts.iter().sum::<u128>();
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| quanta[i] > 0).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(total * quanta[i] % sum), i));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
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
/// second's volume.
pub(super) fn second_trades(profile: &Profile, second: i64, bar: &Bar) -> Vec<Trade> {
    if bar.volume == 0 {
        return Vec::new();
    }
    let mut rng = Rng::new(mix(profile.seed, TAG_TICKS, second));
    let count = (3 + rng.below(3) as u128).min(bar.volume) as usize;
    let (first, second_extreme) = if rng.below(2) == 0 { (bar.high, bar.low) } else { (bar.low, bar.high) };
    let knots = [bar.open, first, second_extreme, bar.close];
    // Times as fractions of the second: the close last, then the extremes, then random times.
    let mut times = vec![1.0, 2.0 / 3.0, 1.0 / 3.0];
    while times.len() < count {
        times.push(0.002 + 0.996 * rng.uniform());
    }
    times.truncate(count);
    times.sort_by(f64::total_cmp);
    let volume_weights: Vec<f64> = (0..count).map(|_| (0.7 * rng.gauss()).exp()).collect();
    let volumes = split(bar.volume - count as u128, &volume_weights);
    let mut previous = bar.open;
    times
        .iter()
        .zip(volumes)
        .map(|(&t, volume)| {
            let segment = ((t * 3.0) as usize).min(2);
            let along = t * 3.0 - segment as f64;
            let price = (knots[segment] + (knots[segment + 1] - knots[segment]) * along).max(bar.low).min(bar.high);
            let trade = Trade { millis: second * 1000 + (t * 1000.0) as i64 - 1, price, previous, volume: volume + 1 };
            previous = price;
            trade
        })
        .collect()
}
