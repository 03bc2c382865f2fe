//! One instrument's day compared across sources: pure, so every rule is unit-tested.
//!
//! The reference is the first source, in configured order, that has the day's bar; every other
//! source that has one is compared with it field by field (open, high, low, close, volume), a
//! difference counting when it exceeds the tolerance in basis points of the reference's value.
//! A source that covers the instrument but has no bar for a day another source has is a
//! difference too (`MISSING`). Corporate actions effective that day (ex-date) are compared per
//! kind, among the sources that publish that kind for the instrument at all: iTick publishes
//! no dividends, and its silence about one is not a disagreement.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::market::{
    corporate::{ActionKind, CorporateAction},
    crosscheck::distance,
    types::Kline,
};

/// What a run concluded about one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Two or more sources have the day's bar and agree within the tolerance, and on the day's
    /// corporate actions.
    Match,
    /// A field or an action differs beyond the tolerance.
    Different,
    /// A source has no bar for the day while another has one.
    Missing,
    /// A source failed (down, timed out): the comparison is incomplete.
    Unavailable,
    /// One source covers the instrument: nothing to compare.
    SingleSource,
    /// No source has a bar for the day (a holiday; not listed yet).
    NoData,
}

impl Verdict {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Match => "MATCH",
            Self::Different => "DIFFERENT",
            Self::Missing => "MISSING",
            Self::Unavailable => "UNAVAILABLE",
            Self::SingleSource => "SINGLE_SOURCE",
            Self::NoData => "NO_DATA",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Match, Self::Different, Self::Missing, Self::Unavailable, Self::SingleSource, Self::NoData]
            .into_iter()
            .find(|v| v.as_str() == raw)
    }
}

/// What one source said about the instrument (sources that do not cover it say nothing).
#[derive(Clone, Debug)]
pub struct Answer {
    pub source: &'static str,
    /// The day's bar, none, or why the source could not say.
    pub bar: Result<Option<Kline>, String>,
    /// Every action the source has for the instrument, or why it could not say.
    pub actions: Result<Vec<CorporateAction>, String>,
}

/// One disagreement: `source`'s `value` against `reference`'s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// `open`, `high`, `low`, `close`, `volume`, `bar` (present at one source only), `split`,
    /// `dividend`, or `error`.
    pub field: String,
    pub source: String,
    /// `None`: the source has none.
    pub value: Option<String>,
    pub reference: String,
    pub reference_value: Option<String>,
    /// How far apart, in basis points of the reference's value (prices and volume only).
    pub bps: Option<Decimal>,
}

/// Compares the sources' `answers` for `day`; `tolerance_bps` is the largest difference that
/// still agrees.
pub fn compare(day: NaiveDate, answers: &[Answer], tolerance_bps: Decimal) -> (Verdict, Vec<Difference>) {
    let mut differences = Vec::new();
    let failed: Vec<&Answer> = answers.iter().filter(|a| a.bar.is_err()).collect();
    let with_bar: Vec<(&Answer, &Kline)> =
        answers.iter().filter_map(|a| a.bar.as_ref().ok().and_then(Option::as_ref).map(|bar| (a, bar))).collect();
    for answer in &failed {
        let why = answer.bar.as_ref().err().cloned().unwrap_or_default();
        differences.push(Difference {
            field: "error".into(),
            source: answer.source.into(),
            value: Some(why),
            reference: String::new(),
            reference_value: None,
            bps: None,
        });
    }
    let mut price_or_action = false;
    let mut missing = false;
    if let Some((reference, bar)) = with_bar.first() {
        for (other, theirs) in &with_bar[1..] {
            for (field, ours, them) in fields(bar, theirs) {
                if let Some(bps) = beyond(ours, them, tolerance_bps) {
                    price_or_action = true;
                    differences.push(Difference {
                        field: field.into(),
                        source: other.source.into(),
                        value: them.map(|v| v.to_string()),
                        reference: reference.source.into(),
                        reference_value: ours.map(|v| v.to_string()),
                        bps,
                    });
                }
            }
        }
        for answer in answers.iter().filter(|a| matches!(a.bar, Ok(None))) {
            missing = true;
            differences.push(Difference {
                field: "bar".into(),
                source: answer.source.into(),
                value: None,
                reference: reference.source.into(),
                reference_value: Some(bar.close.to_string()),
                bps: None,
            });
        }
    }
    for kind in ["split", "dividend"] {
        let publishing: Vec<(&Answer, Vec<String>)> = answers
            .iter()
            .filter_map(|a| {
                let actions = a.actions.as_ref().ok()?;
                actions.iter().any(|x| kind_of(x) == kind).then(|| (a, on_day(actions, day, kind)))
            })
            .collect();
        let Some((reference, theirs)) = publishing.first() else { continue };
        for (other, ours) in &publishing[1..] {
            if ours != theirs {
                price_or_action = true;
                differences.push(Difference {
                    field: kind.into(),
                    source: other.source.into(),
                    value: (!ours.is_empty()).then(|| ours.join("; ")),
                    reference: reference.source.into(),
                    reference_value: (!theirs.is_empty()).then(|| theirs.join("; ")),
                    bps: None,
                });
            }
        }
    }
    let answered = answers.len() - failed.len();
    let verdict = if price_or_action {
        Verdict::Different
    } else if missing {
        Verdict::Missing
    } else if !failed.is_empty() {
        Verdict::Unavailable
    } else if with_bar.len() >= 2 {
        Verdict::Match
    } else if with_bar.len() == 1 && answered == 1 {
        Verdict::SingleSource
    } else {
        Verdict::NoData
    };
    (verdict, differences)
}

/// The compared fields of two bars: (name, reference's, other's).
fn fields(ours: &Kline, theirs: &Kline) -> [(&'static str, Option<Decimal>, Option<Decimal>); 5] {
    [
        ("open", Some(ours.open), Some(theirs.open)),
        ("high", Some(ours.high), Some(theirs.high)),
        ("low", Some(ours.low), Some(theirs.low)),
        ("close", Some(ours.close), Some(theirs.close)),
        ("volume", ours.volume, theirs.volume),
    ]
}

/// `Some(bps)` when `theirs` is further than `tolerance` basis points from `ours` (`Some(None)`
/// when there is no ratio: one side missing, or a zero reference); `None` when they agree.
fn beyond(ours: Option<Decimal>, theirs: Option<Decimal>, tolerance: Decimal) -> Option<Option<Decimal>> {
    match (ours, theirs) {
        (None, None) => None,
        (Some(a), Some(b)) if a == b => None,
        (Some(a), Some(b)) => match distance(a, b) {
            Some(bps) => (bps > tolerance).then_some(Some(bps)),
            None => Some(None),
        },
        _ => Some(None),
    }
}

fn kind_of(action: &CorporateAction) -> &'static str {
    match action.kind {
        ActionKind::Split { .. } => "split",
        ActionKind::Dividend { .. } => "dividend",
    }
}

/// The actions of `kind` effective on `day`, as text (`4:1`, `0.26 USD`), sorted.
fn on_day(actions: &[CorporateAction], day: NaiveDate, kind: &str) -> Vec<String> {
    let mut texts: Vec<String> = actions
        .iter()
        .filter(|a| a.ex_date == day && kind_of(a) == kind)
        .map(|a| match &a.kind {
            ActionKind::Split { from, to } => format!("{}:{}", to.normalize(), from.normalize()),
            ActionKind::Dividend { amount, currency } => format!("{} {currency}", amount.normalize()),
        })
        .collect();
    texts.sort();
    texts
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 3).unwrap()
    }

    fn bar(source: &'static str, close: i64, volume: Option<i64>) -> Kline {
        let d = |n: i64| Decimal::new(n, 2);
        Kline {
            time: Utc.from_utc_datetime(&day().and_hms_opt(0, 0, 0).unwrap()),
            open: d(10_000),
            high: d(close.max(10_000) + 100),
            low: d(close.min(10_000) - 100),
            close: d(close),
            volume: volume.map(Decimal::from),
            turnover: None,
            source,
        }
    }

    fn answer(source: &'static str, bar: Result<Option<Kline>, &str>, actions: Vec<CorporateAction>) -> Answer {
        Answer { source, bar: bar.map_err(str::to_owned), actions: Ok(actions) }
    }

    fn split(ex: NaiveDate, to: i64) -> CorporateAction {
        CorporateAction { ex_date: ex, kind: ActionKind::Split { from: Decimal::ONE, to: Decimal::from(to) } }
    }

    fn dividend(ex: NaiveDate, cents: i64) -> CorporateAction {
        CorporateAction {
            ex_date: ex,
            kind: ActionKind::Dividend { amount: Decimal::new(cents, 2), currency: "USD".into() },
        }
    }

    const TOLERANCE: Decimal = Decimal::from_parts(50, 0, 0, false, 0);

    #[test]
    fn equal_bars_match_and_a_difference_within_the_tolerance_is_no_difference() {
        let answers = [
            answer("polygon", Ok(Some(bar("polygon", 10_000, Some(500)))), vec![]),
            // 0.4% (40 bps) off on the close: within 50.
            answer("itick", Ok(Some(bar("itick", 10_040, Some(500)))), vec![]),
        ];
        assert_eq!(compare(day(), &answers, TOLERANCE), (Verdict::Match, vec![]));
    }

    #[test]
    fn each_field_beyond_the_tolerance_is_reported_with_its_distance() {
        let answers = [
            answer("polygon", Ok(Some(bar("polygon", 10_000, Some(1_000)))), vec![]),
            answer("itick", Ok(Some(bar("itick", 10_100, Some(1_000)))), vec![]),
            answer("simulated", Ok(Some(bar("simulated", 10_000, None))), vec![]),
        ];
        let (verdict, differences) = compare(day(), &answers, TOLERANCE);
        assert_eq!(verdict, Verdict::Different);
        let found: Vec<(&str, &str, Option<Decimal>)> =
            differences.iter().map(|d| (d.field.as_str(), d.source.as_str(), d.bps)).collect();
        assert_eq!(
            found,
            [
                // itick's high is 101.00 + 1.00 = 102.00 against 101.00: 99.01 bps.
                ("high", "itick", Some(Decimal::new(9901, 2))),
                ("close", "itick", Some(Decimal::from(100))),
                ("volume", "simulated", None),
            ]
        );
        assert_eq!(differences[1].value.as_deref(), Some("101.00"));
        assert_eq!(differences[1].reference_value.as_deref(), Some("100.00"));
        assert_eq!(differences[1].reference, "polygon");
    }

    #[test]
    fn a_bar_at_one_source_only_is_missing_at_the_other() {
        let answers =
            [answer("polygon", Ok(None), vec![]), answer("itick", Ok(Some(bar("itick", 10_000, Some(1)))), vec![])];
        let (verdict, differences) = compare(day(), &answers, TOLERANCE);
        assert_eq!(verdict, Verdict::Missing);
        assert_eq!((differences[0].field.as_str(), differences[0].source.as_str()), ("bar", "polygon"));
        assert_eq!(differences[0].reference, "itick", "the first source with the bar is the reference");
    }

    #[test]
    fn no_bar_anywhere_one_source_or_a_failure_are_said_so() {
        let none = [answer("polygon", Ok(None), vec![]), answer("itick", Ok(None), vec![])];
        assert_eq!(compare(day(), &none, TOLERANCE), (Verdict::NoData, vec![]));
        let single = [answer("itick", Ok(Some(bar("itick", 10_000, Some(1)))), vec![])];
        assert_eq!(compare(day(), &single, TOLERANCE).0, Verdict::SingleSource);
        let failed = [answer("polygon", Err("polygon: circuit open"), vec![]), single[0].clone()];
        let (verdict, differences) = compare(day(), &failed, TOLERANCE);
        assert_eq!(verdict, Verdict::Unavailable);
        assert_eq!(differences[0].value.as_deref(), Some("polygon: circuit open"));
    }

    #[test]
    fn actions_are_compared_among_the_sources_that_publish_their_kind() {
        let other_day = NaiveDate::from_ymd_opt(2020, 8, 31).unwrap();
        let b = |s| Ok(Some(bar(s, 10_000, Some(1))));
        // iTick publishes no dividends: its silence on polygon's dividend is no difference.
        let answers = [
            answer("polygon", b("polygon"), vec![split(other_day, 4), dividend(day(), 26)]),
            answer("itick", b("itick"), vec![split(other_day, 4)]),
        ];
        assert_eq!(compare(day(), &answers, TOLERANCE), (Verdict::Match, vec![]));
        // A split on the day at one source and not the other is.
        let answers = [
            answer("polygon", b("polygon"), vec![split(other_day, 4), split(day(), 2)]),
            answer("itick", b("itick"), vec![split(other_day, 4)]),
        ];
        let (verdict, differences) = compare(day(), &answers, TOLERANCE);
        assert_eq!(verdict, Verdict::Different);
        assert_eq!(differences[0].field, "split");
        assert_eq!((differences[0].value.as_deref(), differences[0].reference_value.as_deref()), (None, Some("2:1")));
    }
}
