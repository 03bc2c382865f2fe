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
//! Factors are multiplied as exact decimals; every price of an adjusted series is rounded once,
//! half away from zero, to [`ADJUSTED_PRICE_DP`](crate::market::precision::ADJUSTED_PRICE_DP) (4) decimals and always rendered with four
//! (see [`crate::market::precision`]). Volumes move inversely to prices, for splits only (a dividend
//! does not change the number of shares), rounded once, half away from zero, to the raw
//! volume's own decimal places: whole shares stay whole shares (a 3:1 split restates 1,000
//! shares forward as 3,000, backward as 333). Turnover is money traded and does not change.
//!
//! Rounding happens at the daily bar; a week or month of an adjusted series is the exact
//! aggregate ([`aggregate`](crate::market::corporate::aggregate)) of its adjusted days (first open, extremes, last close, sums), so
//! it never differs from its days by a rounding (the service rebuilds them that way).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{
    precision::{ADJUSTED_PRICE_DP, MARKET_CAP_DP, RATIO_DP, ROUNDING, YIELD_DP, fixed},
    types::Kline,
};
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

impl FundamentalPoint {
    /// The point with its derived figures computed by finql, each at its stated scale, rounded
    /// once, half away from zero (see [`super::precision`]):
    ///
    /// - `pe` is `price / eps` when the source reports both (null when EPS is zero or
    ///   negative); otherwise the source's own positive P/E, restated;
    /// - `dividend_yield` is [`trailing_dividends`] over `price`, in percent, when the source
    ///   models dividends (reports a yield) and a positive price: so it agrees with
    ///   `corporateActions` on every day;
    /// - `pb` and `market_cap` are the source's (it knows book value and share count), restated.
    pub fn derived(self, actions: &[CorporateAction]) -> Self {
        let pe = match (self.price, self.eps) {
            (Some(price), Some(eps)) => (eps > Decimal::ZERO).then(|| fixed(price / eps, RATIO_DP)),
            _ => self.pe.filter(|pe| *pe > Decimal::ZERO).map(|pe| fixed(pe, RATIO_DP)),
        };
        let dividend_yield = match (self.dividend_yield, self.price) {
            (Some(_), Some(price)) if price > Decimal::ZERO => {
                let paid = trailing_dividends(actions, self.date, &self.currency);
                Some(fixed(paid * Decimal::ONE_HUNDRED / price, YIELD_DP))
            }
            (reported, _) => reported.map(|y| fixed(y, YIELD_DP)),
        };
        Self {
            pe,
            pb: self.pb.map(|pb| fixed(pb, RATIO_DP)),
            dividend_yield,
            market_cap: self.market_cap.map(|cap| fixed(cap, MARKET_CAP_DP)),
            ..self
        }
    }
}

/// Cash dividends in `currency` with ex-dates in the year up to `date` (after the same day a
/// year before, up to and including `date`), each restated in the shares of `date`: a dividend
/// of 1.00 before a 4:1 split counts 0.25 after it. Exact (no rounding).
pub fn trailing_dividends(actions: &[CorporateAction], date: NaiveDate, currency: &str) -> Decimal {
    let year_ago = date.with_year(date.year() - 1).unwrap_or(date - Duration::days(365));
    actions
        .iter()
        .filter(|a| a.ex_date > year_ago && a.ex_date <= date)
        .filter_map(|a| match &a.kind {
            ActionKind::Dividend { amount, currency: paid_in } if paid_in == currency => {
                let later_splits = actions.iter().filter(|s| s.ex_date > a.ex_date && s.ex_date <= date);
                Some(later_splits.fold(*amount, |amount, split| match split.kind {
                    ActionKind::Split { from, to } if !from.is_zero() && !to.is_zero() => amount * from / to,
                    _ => amount,
                }))
            }
            _ => None,
        })
        .sum()
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

/// `bars` adjusted for `events` (any order), each as of its start; with `mode` other than
/// `None`, every price is at [`ADJUSTED_PRICE_DP`] decimals, also where no event applies. Daily
/// and finer bars never straddle an ex-date; a weekly or monthly bar is re-aggregated from its
/// adjusted days (the service does), so that it is exact.
pub fn adjust_klines(bars: &[Kline], events: &[AdjustmentEvent], mode: Adjust) -> Vec<Kline> {
    if mode == Adjust::None {
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
        source: first.source,
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
    let adjust = |p: Decimal| fixed(p * price, ADJUSTED_PRICE_DP);
    Kline {
        time: bar.time,
        open: adjust(bar.open),
        high: adjust(bar.high),
        low: adjust(bar.low),
        close: adjust(bar.close),
        volume: bar.volume.map(|v| adjusted_volume(v, shares)),
        turnover: bar.turnover,
        source: bar.source,
    }
}

/// `volume × shares`, rounded half away from zero to the raw volume's own decimal places (whole
/// shares stay whole; a crypto-style fractional volume keeps its scale).
pub fn adjusted_volume(volume: Decimal, shares: Decimal) -> Decimal {
    if shares == Decimal::ONE {
        return volume;
    }
    let dp = volume.scale();
    let mut out = (volume * shares).round_dp_with_strategy(dp, ROUNDING);
    out.rescale(dp);
    out
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
            source: "simulated",
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

    fn point(date: NaiveDate, price: &str, eps: Option<&str>) -> FundamentalPoint {
        FundamentalPoint {
            date,
            price: Some(d(price)),
            eps: eps.map(d),
            pe: Some(d("1")),
            pb: Some(d("3.1")),
            dividend_yield: Some(d("9")),
            market_cap: Some(d("1234567.5")),
            currency: "USD".into(),
        }
    }

    #[test]
    fn derived_figures_at_their_stated_scale() {
        let on = day(20).date_naive();
        // 93 / 1 = 93: "93.00"; 10.01 / 4 = 2.5025 → 2.50; 0.10 / 0.16 = 0.625 → 0.63 (not 0.62).
        let p = point(on, "93", Some("1")).derived(&[]);
        assert_eq!(p.pe.unwrap().to_string(), "93.00");
        assert_eq!(p.pb.unwrap().to_string(), "3.10");
        assert_eq!(p.dividend_yield.unwrap().to_string(), "0.00", "no dividends: zero, at two places");
        assert_eq!(p.market_cap.unwrap().to_string(), "1234568", "half away from zero, whole units");
        assert_eq!(point(on, "10.01", Some("4")).derived(&[]).pe.unwrap().to_string(), "2.50");
        assert_eq!(point(on, "0.10", Some("0.16")).derived(&[]).pe.unwrap().to_string(), "0.63");
        assert_eq!(point(on, "10", Some("-1")).derived(&[]).pe, None, "a loss has no P/E");
        assert_eq!(point(on, "10", Some("0")).derived(&[]).pe, None);
        // Without EPS the source's P/E is restated; a source without a yield keeps none.
        let snapshot =
            FundamentalPoint { eps: None, pe: Some(d("23.456")), dividend_yield: None, ..point(on, "1", None) };
        let snapshot = snapshot.derived(&[]);
        assert_eq!(snapshot.pe.unwrap().to_string(), "23.46");
        assert_eq!(snapshot.dividend_yield, None);
    }

    #[test]
    fn trailing_dividends_in_the_shares_of_the_day() {
        let usd = |amount: &str| ActionKind::Dividend { amount: d(amount), currency: "USD".into() };
        let at = |y: i32, m: u32, dd: u32| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        let actions = vec![
            CorporateAction { ex_date: at(2023, 3, 10), kind: usd("9.00") }, // more than a year before
            CorporateAction { ex_date: at(2023, 6, 10), kind: usd("1.00") }, // before the split: 0.25
            CorporateAction { ex_date: at(2023, 8, 1), kind: ActionKind::Split { from: d("1"), to: d("4") } },
            CorporateAction { ex_date: at(2023, 9, 10), kind: usd("0.30") },
            CorporateAction {
                ex_date: at(2023, 9, 11),
                kind: ActionKind::Dividend { amount: d("5"), currency: "EUR".into() },
            },
            CorporateAction { ex_date: at(2024, 3, 10), kind: usd("0.40") }, // the day itself counts
            CorporateAction { ex_date: at(2024, 3, 11), kind: usd("7.00") }, // after the day
        ];
        assert_eq!(trailing_dividends(&actions, at(2024, 3, 10), "USD"), d("0.95"));
        // Before the split, the same 1.00 counts in full.
        assert_eq!(trailing_dividends(&actions, at(2023, 7, 1), "USD"), d("10.00"));
        // Yield: 0.95 × 100 / 38.00 = 2.5 → "2.50".
        let p = point(at(2024, 3, 10), "38.00", Some("2")).derived(&actions);
        assert_eq!(p.dividend_yield.unwrap().to_string(), "2.50");
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
        // Day 1: 100 × 0.99 × 0.5 = 49.50; day 2: 99 × 0.5 = 49.50; day 3 unchanged. Every
        // price at the stated four places, the unchanged bar included.
        assert_eq!(closes(&adjusted), ["49.5000", "49.5000", "49.5000"]);
        // Volumes × 2 before the split only (the dividend changes no share count).
        assert_eq!(volumes(&adjusted), ["2000", "2000", "2000"]);
        assert_eq!(adjusted[2].close, bars[2].close);
        assert_eq!(adjusted[2].volume, bars[2].volume);
        assert!(adjusted.iter().all(|b| b.turnover == Some(d("1000.00"))), "money traded does not change");
    }

    #[test]
    fn backward_keeps_the_earliest_bar() {
        let (bars, events) = example();
        let adjusted = adjust_klines(&bars, &events, Adjust::Backward);
        // Day 2: 99 / 0.99 = 100.00; day 3: 49.50 / (0.99 × 0.5) = 100.00.
        assert_eq!(closes(&adjusted), ["100.0000", "100.0000", "100.0000"]);
        assert_eq!(volumes(&adjusted), ["1000", "1000", "1000"]);
        assert_eq!(adjusted[0].close, bars[0].close);
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
        // Backward across it: 99.00 × 3 = 297.0000; volume 1000 / 3 rounds to whole shares.
        let adjusted = adjust_klines(&bars[1..2], &[AdjustmentEvent::new(&split, None)], Adjust::Backward);
        assert_eq!(adjusted[0].close.to_string(), "297.0000");
        assert_eq!(adjusted[0].volume, Some(d("333")));
        // No event at all: still the fixed scale.
        assert_eq!(closes(&adjust_klines(&bars, &[], Adjust::Forward)), ["100.0000", "99.0000", "49.5000"]);
    }

    #[test]
    fn rounding_is_half_away_from_zero_once() {
        // 0.00005 × 1 is a midpoint at four places: 0.0001, not half-even's 0.0000.
        let split = action(2, ActionKind::Split { from: d("1"), to: d("2") });
        let cheap = bar(1, "0.0001", "3");
        let adjusted = adjust_klines(&[cheap], &[AdjustmentEvent::new(&split, None)], Adjust::Forward);
        assert_eq!(adjusted[0].close.to_string(), "0.0001");
        // Volume 5 / 2 = 2.5 shares backward: 3 (half-even would say 2).
        let five = bar(3, "10.00", "5");
        let adjusted = adjust_klines(&[five], &[AdjustmentEvent::new(&split, None)], Adjust::Backward);
        assert_eq!(adjusted[0].volume, Some(d("3")));
        assert_eq!(adjusted_volume(d("0.125"), d("0.5")).to_string(), "0.063", "keeps the raw scale");
    }
}
