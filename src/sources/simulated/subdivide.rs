//! Splitting a bar into children (a day into hours, an hour into minutes, a minute into
//! seconds) that aggregate back to it exactly: the first opens at its open, the last closes at
//! its close, one child reaches its high and one its low, volumes and turnovers sum to its own,
//! every price on the grid.

use super::path::Bar;
use super::profile::Rng;

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
/// `snap` puts a price on the grid (monotonic; the parent's prices are on it already).
pub(super) fn subdivide(parent: &Bar, weights: &[f64], seed: u64, snap: &dyn Fn(f64) -> f64) -> Vec<Bar> {
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
        *point = snap(squeezed.max(low).min(high));
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
        let child_high = if i == high_child { high } else { snap((top + squeeze(top, high, up)).max(top).min(high)) };
        let child_low =
            if i == low_child { low } else { snap((bottom - squeeze(low, bottom, down)).min(bottom).max(low)) };
        let width = if sigma > 0.0 { ((child_high - child_low) / (1.6 * sigma)).min(3.0) } else { 1.0 };
        volume_weights.push(weights[i] * (0.35 * rng.gauss()).exp() * (0.6 + 0.4 * width));
        children.push(Bar { open: a, high: child_high, low: child_low, close: b, volume: 0, turnover: 0, live: true });
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
