//! iTick's reference data: splits (`/stock/split`) and the current fundamentals snapshot
//! (`/stock/info`).
//!
//! What iTick has, and what it has not:
//! - **Splits** come region-wide and paged: `/stock/split?region=US&page=N` answers
//!   `{content: [{d ex-date ms, r region, n name, c code, v "from:to"}], page, totalPages}`.
//!   `v` is read as old shares `:` new shares (`"1:10"` is a ten-for-one split), the order the
//!   provider's example suggests (*unverified*). Pages are numbered from whatever the first
//!   answer says (0 or 1). The region's whole list is cached here for a day, so one call per
//!   region serves every instrument of it: that is the protocol's granularity, and the quota
//!   is small. The ex-date is the calendar day of `d` in the exchange's time zone.
//! - **No dividends**: iTick publishes none, so none are served (and `FORWARD`/`BACKWARD`
//!   adjust for splits only).
//! - **Fundamentals**: `/stock/info` is a snapshot of today: `pet` P/E, `mcb` market cap, `tso`
//!   shares, `fcc` currency. It becomes one point dated today (UTC) with `pe` and `marketCap`;
//!   iTick has no history, EPS, P/B or dividend yield, and none are made up.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{
    ItickSource,
    parse::{decimal, int, millis},
    symbols::normalize_code,
};
use crate::{
    market::{
        calendar,
        corporate::{ActionKind, CorporateAction, FundamentalPoint},
        source::SourceError,
        types::Instrument,
    },
    reference::service::AssetClass,
};

/// Splits of one region, by normalised code, oldest first.
pub type RegionSplits = Arc<HashMap<String, Vec<CorporateAction>>>;

/// Region-wide split lists change at most daily.
pub const SPLITS_TTL: Duration = Duration::from_secs(86_400);
/// Regions iTick serves, many times over.
pub const SPLITS_CACHE: u64 = 100;
/// The most pages read for one region: a bound on the quota one cache miss may spend.
const MAX_PAGES: i64 = 50;

/// The time zone an exchange dates its ex-dates in.
fn exchange_zone(region: &str) -> Tz {
    match region.to_ascii_uppercase().as_str() {
        "US" => chrono_tz::America::New_York,
        "HK" => chrono_tz::Asia::Hong_Kong,
        "SH" | "SZ" | "CN" => chrono_tz::Asia::Shanghai,
        "JP" => chrono_tz::Asia::Tokyo,
        "GB" => chrono_tz::Europe::London,
        "DE" => chrono_tz::Europe::Berlin,
        "SG" => chrono_tz::Asia::Singapore,
        _ => chrono_tz::UTC,
    }
}

/// `"1:10"` as (from 1, to 10); positive numbers only.
pub fn parse_ratio(text: &str) -> Option<(Decimal, Decimal)> {
    let (from, to) = text.split_once(':')?;
    let from = decimal(&Value::String(from.to_owned()))?;
    let to = decimal(&Value::String(to.to_owned()))?;
    (from > Decimal::ZERO && to > Decimal::ZERO).then_some((from, to))
}

/// One item of `/stock/split`: (normalised code, action).
pub fn parse_split(raw: &Value, region: &str) -> Result<(String, CorporateAction), String> {
    let code = raw.get("c").and_then(Value::as_str).filter(|c| !c.trim().is_empty()).ok_or("missing `c`")?;
    let at = raw.get("d").and_then(millis).ok_or("missing or unreadable `d`")?;
    let ratio = raw.get("v").and_then(Value::as_str).ok_or("missing `v`")?;
    let (from, to) = parse_ratio(ratio).ok_or_else(|| format!("`v` is not a ratio like 1:10: {ratio}"))?;
    let ex_date = at.with_timezone(&exchange_zone(region)).date_naive();
    Ok((normalize_code(code), CorporateAction { ex_date, kind: ActionKind::Split { from, to } }))
}

/// `/stock/info` as a fundamentals point dated `today`.
pub fn parse_info(raw: &Value, instrument: &Instrument, today: NaiveDate) -> FundamentalPoint {
    let field = |name: &str| raw.get(name).and_then(decimal);
    FundamentalPoint {
        date: today,
        price: None,
        eps: None,
        // A negative or zero P/E is a loss: no meaningful ratio.
        pe: field("pet").filter(|pe| *pe > Decimal::ZERO),
        pb: None,
        dividend_yield: None,
        market_cap: field("mcb").filter(|cap| *cap > Decimal::ZERO),
        currency: raw
            .get("fcc")
            .and_then(Value::as_str)
            .filter(|c| c.len() == 3)
            .map_or_else(|| instrument.currency.clone(), str::to_ascii_uppercase),
    }
}

impl ItickSource {
    /// Every split of a region, by code (cached for a day; concurrent misses share one fetch).
    pub(super) async fn region_splits(&self, region: &str) -> Result<RegionSplits, SourceError> {
        let region = region.to_ascii_uppercase();
        self.splits.try_get_with(region.clone(), self.fetch_region_splits(region)).await.map_err(|err| (*err).clone())
    }

    async fn fetch_region_splits(&self, region: String) -> Result<RegionSplits, SourceError> {
        let mut by_code: HashMap<String, Vec<CorporateAction>> = HashMap::new();
        let mut page: Option<i64> = None;
        let mut zero_based: Option<bool> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("region", region.clone())];
            if let Some(page) = page {
                query.push(("page", page.to_string()));
            }
            let data = self.call("/stock/split", &query).await?;
            let items = match data.get("content") {
                Some(Value::Array(items)) => items.as_slice(),
                _ if data.is_null() => &[],
                _ => return Err(SourceError::Invalid(format!("unexpected /stock/split answer for region {region}"))),
            };
            for raw in items {
                match parse_split(raw, &region) {
                    Ok((code, action)) => by_code.entry(code).or_default().push(action),
                    Err(why) => self.reject("split", &region, &why),
                }
            }
            let current = data.get("page").and_then(int).or(page).unwrap_or(0);
            let total = data.get("totalPages").and_then(int).unwrap_or(1);
            // Numbered from 0 (the last is total - 1) or from 1 (the last is total): the first
            // answer tells which.
            let last = if *zero_based.get_or_insert(current == 0) { total - 1 } else { total };
            if items.is_empty() || current >= last {
                break;
            }
            page = Some(current + 1);
        }
        for actions in by_code.values_mut() {
            actions.sort_by_key(|a| a.ex_date);
            actions.dedup();
        }
        Ok(Arc::new(by_code))
    }

    pub(super) async fn splits_of(&self, instrument: &Instrument) -> Result<Vec<CorporateAction>, SourceError> {
        if instrument.asset_class != AssetClass::Stock {
            return Ok(Vec::new());
        }
        let splits = self.region_splits(&instrument.region).await?;
        Ok(splits.get(&normalize_code(&instrument.code)).cloned().unwrap_or_default())
    }

    pub(super) async fn snapshot(
        &self,
        instrument: &Instrument,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FundamentalPoint>, SourceError> {
        // The snapshot is as of the latest trading day: on a weekend or holiday, the last close.
        let today = Utc::now().date_naive();
        let today = match calendar::is_trading_day(instrument.market, today) {
            true => today,
            false => calendar::previous_trading_day(instrument.market, today).unwrap_or(today),
        };
        if instrument.asset_class != AssetClass::Stock || today < from || today > to {
            return Ok(Vec::new());
        }
        let query =
            [("type", "stock".to_owned()), ("region", instrument.region.clone()), ("code", instrument.code.clone())];
        let data = self.call("/stock/info", &query).await?;
        if data.is_null() {
            return Err(SourceError::NotFound(format!("iTick has no info for {}", instrument.symbol)));
        }
        Ok(vec![parse_info(&data, instrument, today)])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reference::Symbol;

    #[test]
    fn splits_parse_with_exchange_dates() {
        // Midnight in New York is 04:00 UTC in summer: the ex-date is the New York day.
        let raw = json!({"d": 1_598_846_400_000i64, "r": "US", "n": "Apple", "c": "AAPL", "v": "1:4"});
        let (code, action) = parse_split(&raw, "US").unwrap();
        assert_eq!(code, "AAPL");
        assert_eq!(action.ex_date, NaiveDate::from_ymd_opt(2020, 8, 31).unwrap());
        assert_eq!(action.kind, ActionKind::Split { from: Decimal::ONE, to: Decimal::from(4) });
        let (code, _) = parse_split(&json!({"d": 1_400_083_200_000i64, "c": "00700", "v": "1:5"}), "HK").unwrap();
        assert_eq!(code, "700");
        assert!(parse_split(&json!({"d": 0, "c": "X", "v": "abc"}), "US").is_err());
        assert!(parse_split(&json!({"d": 0, "c": "X", "v": "0:2"}), "US").is_err());
        assert!(parse_split(&json!({"c": "X", "v": "1:2"}), "US").is_err());
    }

    #[test]
    fn info_is_one_point_and_a_loss_has_no_pe() {
        let instrument = Instrument {
            symbol: Symbol::parse("AAPL.US").unwrap(),
            asset_class: AssetClass::Stock,
            region: "US".into(),
            code: "AAPL".into(),
            currency: "USD".into(),
            market: crate::market::calendar::Region::Us,
            listed_at: None,
        };
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let point = parse_info(&json!({"pet": 31.25, "mcb": 3.4e12, "tso": 15e9, "fcc": "usd"}), &instrument, today);
        assert_eq!(point.pe.unwrap().to_string(), "31.25");
        assert_eq!(point.market_cap.unwrap().to_string(), "3400000000000");
        assert_eq!(point.currency, "USD");
        assert!(point.eps.is_none() && point.pb.is_none() && point.dividend_yield.is_none());
        let loss = parse_info(&json!({"pet": -12.5, "mcb": null}), &instrument, today);
        assert!(loss.pe.is_none() && loss.market_cap.is_none());
        assert_eq!(loss.currency, "USD");
    }
}
