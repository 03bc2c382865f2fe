//! Corporate actions (splits, cash dividends), fundamentals, and price adjustment.
//!
//! Klines are served *as traded* by default: a bar before a 4:1 split shows the price people
//! paid then, four times today's level. Comparing prices across an ex-date needs adjustment:
//!
//! - every ex-date has a factor: `from / to` for a split of `to` new shares for `from` old
//!   (1/4 for a 4:1 split), and `(prev_close − dividend) / prev_close` for a cash dividend, where
//!   `prev_close` is the close of the last daily bar before the ex-date (the standard
//!   "ratio" method: the dividend leaves the holder's wealth unchanged);
//! - `FORWARD` multiplies each bar by the product of the factors of the ex-dates *after* it,
//!   so the latest bar keeps its price and history is restated in today's terms;
//! - `BACKWARD` divides each bar by the product of the factors of the ex-dates *on or before*
//!   it, so the earliest price of the source's history keeps its value and later bars are
//!   restated in its terms (they grow with splits and reinvested dividends).
//!
//! Factors are multiplied as exact decimals; prices are rounded once, at the end, to
//! `ADJUSTED_PRICE_DP` decimal places (or the raw price's own scale when finer), which is
//! finer than any stock's tick. Volumes move inversely to prices, for splits only (a dividend
//! does not change the number of shares), and keep the raw volume's decimal places. Turnover is
//! money traded and does not change.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use super::types::Kline;

/// Decimal places of adjusted prices: finer than any equity tick (US 0.01, HK 0.001).
pub const ADJUSTED_PRICE_DP: u32 = 4;
/// Decimal places kept in cumulative factors: far below any rounding of prices, and small
/// enough that products of a few hundred factors never overflow a `Decimal`.
const FACTOR_DP: u32 = 20;

/// What happened on an ex-date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// `to` new shares for every `from` old ones (4:1 is `from` 1, `to` 4; a 1:10 reverse
    /// split is `from` 10, `to` 1).
    Split { from: Decimal, to: Decimal },
    /// Cash paid per share (as traded on the ex-date), in `currency`.
    Dividend { amount: Decimal, currency: String },
}

/// A split or a cash dividend, effective at the start of `ex_date` (UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorporateAction {
    pub ex_date: NaiveDate,
    pub kind: ActionKind,
}

impl CorporateAction {
    /// The first instant prices trade ex the action.
    pub fn effective(&self) -> DateTime<Utc> {
        self.ex_date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }
}

/// Valuation figures of one day. Per-share figures are in the shares of that day (before any
/// later split), so `pe = price / eps` holds on every date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FundamentalPoint {
    pub date: NaiveDate,
    /// The close the ratios were computed from, when the source reports it.
    pub price: Option<Decimal>,
    /// Trailing twelve months' earnings per share.
    pub eps: Option<Decimal>,
    /// Price over trailing EPS; `None` when EPS is zero or negative (no meaningful P/E).
    pub pe: Option<Decimal>,
    /// Price over book value per share.
    pub pb: Option<Decimal>,
    /// Trailing twelve months' cash dividends over the price, in percent.
    pub dividend_yield: Option<Decimal>,
    /// Price × shares outstanding.
    pub market_cap: Option<Decimal>,
    pub currency: String,
}

/// How klines are adjusted for corporate actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Adjust {
    /// As traded.
    #[default]
    None,
    /// History restated in today's terms: the latest bar is unchanged.
    Forward,
    /// Later bars restated in the terms of the start of history: the earliest is unchanged.
    Backward,
}

/// The price factor of one ex-date (see the module docs). `prev_close` is needed for dividends
/// only; a dividend without one, or one that would wipe out the price, has no effect.
pub fn factor(kind: &ActionKind, prev_close: Option<Decimal>) -> Decimal {
    match kind {
        ActionKind::Split { from, to } if !from.is_zero() && !to.is_zero() => *from / *to,
        ActionKind::Split { .. } => Decimal::ONE,
        ActionKind::Dividend { amount, .. } => match prev_close {
            Some(close) if close > *amount && *amount >= Decimal::ZERO => (close - *amount) / close,
            _ => Decimal::ONE,
        },
    }
}

/// One ex-date reduced to what adjustment needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdjustmentEvent {
    pub effective: DateTime<Utc>,
    /// Price factor (see [`factor`]).
    pub price: Decimal,
    /// Share-count factor: the split's `to / from`, 1 for dividends.
    pub shares: Decimal,
}

impl AdjustmentEvent {
    pub fn new(action: &CorporateAction, prev_close: Option<Decimal>) -> Self {
        let shares = match &action.kind {
            ActionKind::Split { from, to } if !from.is_zero() && !to.is_zero() => *to / *from,
            _ => Decimal::ONE,
        };
        Self { effective: action.effective(), price: factor(&action.kind, prev_close), shares }
    }
}

/// `bars` adjusted for `events` (any order), each as of its start. Daily and finer bars never
/// straddle an ex-date; a weekly or monthly bar that does mixes two share bases, and must be
/// re-aggregated from its adjusted days (the service does).
pub fn adjust_klines(bars: &[Kline], events: &[AdjustmentEvent], mode: Adjust) -> Vec<Kline> {
    if mode == Adjust::None || events.is_empty() {
        return bars.to_vec();
    }
    bars.iter()
        .map(|bar| {
            let (price, shares) = match mode {
                Adjust::Forward => cumulative(events.iter().filter(|e| e.effective > bar.time)),
                // Dividing by the factors of the events on or before the bar.
                _ => {
                    let (price, shares) = cumulative(events.iter().filter(|e| e.effective <= bar.time));
                    (inverse(price), inverse(shares))
                }
            };
            scale(bar, price, shares)
        })
        .collect()
}

/// One bar of `bars` (oldest first, all within it) starting at `time`: open of the first,
/// close of the last, extremes, sums of volume and turnover.
pub fn aggregate(time: DateTime<Utc>, bars: &[Kline]) -> Option<Kline> {
    let (first, last) = (bars.first()?, bars.last()?);
    Some(Kline {
        time,
        open: first.open,
        high: bars.iter().map(|b| b.high).max()?,
        low: bars.iter().map(|b| b.low).min()?,
        close: last.close,
        volume: bars.iter().map(|b| b.volume).sum(),
        turnover: bars.iter().map(|b| b.turnover).sum(),
    })
}

fn cumulative<'a>(events: impl Iterator<Item = &'a AdjustmentEvent>) -> (Decimal, Decimal) {
    events.fold((Decimal::ONE, Decimal::ONE), |(price, shares), e| {
        ((price * e.price).round_dp(FACTOR_DP), (shares * e.shares).round_dp(FACTOR_DP))
    })
}

fn inverse(value: Decimal) -> Decimal {
    if value.is_zero() { Decimal::ONE } else { (Decimal::ONE / value).round_dp(FACTOR_DP) }
}

/// Prices × `price`, volume × `shares`; rounded as the module docs say.
fn scale(bar: &Kline, price: Decimal, shares: Decimal) -> Kline {
    if price == Decimal::ONE && shares == Decimal::ONE {
        return bar.clone();
    }
    let adjust = |p: Decimal| {
        let dp = ADJUSTED_PRICE_DP.max(p.scale());
        let mut out = (p * price).round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        out.rescale(dp);
        out.normalize_trailing_to(p.scale())
    };
    Kline {
        time: bar.time,
        open: adjust(bar.open),
        high: adjust(bar.high),
        low: adjust(bar.low),
        close: adjust(bar.close),
        volume: bar
            .volume
            .map(|v| (v * shares).round_dp_with_strategy(v.scale(), RoundingStrategy::MidpointAwayFromZero)),
        turnover: bar.turnover,
    }
}

/// Trailing zeros dropped, but never below `min_scale` places (so `400.00 × 1/4` reads
/// `100.00`, not `100.0000` or `100`).
trait NormalizeTrailing {
    fn normalize_trailing_to(self, min_scale: u32) -> Self;
}

impl NormalizeTrailing for Decimal {
    fn normalize_trailing_to(self, min_scale: u32) -> Self {
        let mut out = self.normalize();
        if out.scale() < min_scale {
            out.rescale(min_scale);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::TimeZone;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn day(n: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, n, 0, 0, 0).unwrap()
    }

    fn bar(n: u32, close: &str, volume: &str) -> Kline {
        let c = d(close);
        Kline {
            time: day(n),
            open: c,
            high: c,
            low: c,
            close: c,
            volume: Some(d(volume)),
            turnover: Some(d("1000.00")),
        }
    }

    fn action(n: u32, kind: ActionKind) -> CorporateAction {
        CorporateAction { ex_date: day(n).date_naive(), kind }
    }

    /// Hand-computed: closes 100.00 (day 1), 99.00 (day 2, ex a 1.00 dividend), 49.50 (day 3, ex
    /// a 2:1 split). Dividend factor (100 − 1) / 100 = 0.99; split factor 1/2.
    fn example() -> (Vec<Kline>, Vec<AdjustmentEvent>) {
        let bars = vec![bar(1, "100.00", "1000"), bar(2, "99.00", "1000"), bar(3, "49.50", "2000")];
        let dividend = action(2, ActionKind::Dividend { amount: d("1.00"), currency: "USD".into() });
        let split = action(3, ActionKind::Split { from: d("1"), to: d("2") });
        let events = vec![AdjustmentEvent::new(&dividend, Some(d("100.00"))), AdjustmentEvent::new(&split, None)];
        (bars, events)
    }

    fn closes(bars: &[Kline]) -> Vec<String> {
        bars.iter().map(|b| b.close.to_string()).collect()
    }

    fn volumes(bars: &[Kline]) -> Vec<String> {
        bars.iter().map(|b| b.volume.map(|v| v.to_string()).unwrap_or_default()).collect()
    }

    #[test]
    fn factors() {
        let dividend = ActionKind::Dividend { amount: d("1.00"), currency: "USD".into() };
        assert_eq!(factor(&dividend, Some(d("100.00"))), d("0.99"));
        assert_eq!(factor(&dividend, None), Decimal::ONE, "no previous close: no effect");
        assert_eq!(factor(&dividend, Some(d("0.50"))), Decimal::ONE, "a dividend above the price is ignored");
        assert_eq!(factor(&ActionKind::Split { from: d("1"), to: d("4") }, None), d("0.25"));
        assert_eq!(factor(&ActionKind::Split { from: d("10"), to: d("1") }, None), d("10"), "reverse split");
    }

    #[test]
    fn forward_keeps_the_latest_bar() {
        let (bars, events) = example();
        let adjusted = adjust_klines(&bars, &events, Adjust::Forward);
        // Day 1: 100 × 0.99 × 0.5 = 49.50; day 2: 99 × 0.5 = 49.50; day 3 unchanged.
        assert_eq!(closes(&adjusted), ["49.50", "49.50", "49.50"]);
        // Volumes × 2 before the split only (the dividend changes no share count).
        assert_eq!(volumes(&adjusted), ["2000", "2000", "2000"]);
        assert_eq!(adjusted[2], bars[2]);
        assert!(adjusted.iter().all(|b| b.turnover == Some(d("1000.00"))), "money traded does not change");
    }

    #[test]
    fn backward_keeps_the_earliest_bar() {
        let (bars, events) = example();
        let adjusted = adjust_klines(&bars, &events, Adjust::Backward);
        // Day 2: 99 / 0.99 = 100.00; day 3: 49.50 / (0.99 × 0.5) = 100.00.
        assert_eq!(closes(&adjusted), ["100.00", "100.00", "100.00"]);
        assert_eq!(volumes(&adjusted), ["1000", "1000", "1000"]);
        assert_eq!(adjusted[0], bars[0]);
    }

    #[test]
    fn none_is_as_traded_and_rounding_is_to_four_places() {
        let (bars, events) = example();
        assert_eq!(adjust_klines(&bars, &events, Adjust::None), bars);
        // A 3:1 split: 100.00 / 3 = 33.3333 (4 places), volume 1000 × 3.
        let split = action(2, ActionKind::Split { from: d("1"), to: d("3") });
        let adjusted = adjust_klines(&bars[..1], &[AdjustmentEvent::new(&split, None)], Adjust::Forward);
        assert_eq!(adjusted[0].close.to_string(), "33.3333");
        assert_eq!(adjusted[0].volume, Some(d("3000")));
        // Backward across it: 99.00 × 3 = 297.00; volume 1000 / 3 rounds to whole shares.
        let adjusted = adjust_klines(&bars[1..2], &[AdjustmentEvent::new(&split, None)], Adjust::Backward);
        assert_eq!(adjusted[0].close.to_string(), "297.00");
        assert_eq!(adjusted[0].volume, Some(d("333")));
    }
}
