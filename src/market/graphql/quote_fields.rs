//! `Quote`'s fields as values, without executing the schema: what a live subscription that
//! only projects a quote's fields (`live::graphql::projection`) renders once per event and
//! shares among its subscribers. Each field's value is made by the same scalar and enum the
//! `Quote` resolvers return, so both ways write the same JSON (a test subscribes both ways and
//! compares every field). A field not listed here (a new one, or one with arguments) is not a
//! plain projection: such subscriptions run through the schema.

use async_graphql::{InputType, OutputType, ScalarType, Value};

use super::quotes::{QuoteObject, QuoteSource, TradingStatusGql};
use crate::{
    graphql::{
        global_id::GlobalId,
        scalars::{DecimalString, Timestamp},
    },
    market::types::Quote,
};

/// A field of `Quote` that takes no arguments and returns a scalar or an enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteField {
    Typename,
    Id,
    Symbol,
    Last,
    Open,
    High,
    Low,
    PrevClose,
    Change,
    ChangePercent,
    Volume,
    Turnover,
    Timestamp,
    TradingStatus,
    Source,
    Stale,
    Delayed,
}

impl QuoteField {
    /// The field of this name, if it is one.
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "__typename" => Self::Typename,
            "id" => Self::Id,
            "symbol" => Self::Symbol,
            "last" => Self::Last,
            "open" => Self::Open,
            "high" => Self::High,
            "low" => Self::Low,
            "prevClose" => Self::PrevClose,
            "change" => Self::Change,
            "changePercent" => Self::ChangePercent,
            "volume" => Self::Volume,
            "turnover" => Self::Turnover,
            "timestamp" => Self::Timestamp,
            "tradingStatus" => Self::TradingStatus,
            "source" => Self::Source,
            "stale" => Self::Stale,
            "delayed" => Self::Delayed,
            _ => return None,
        })
    }

    /// The field's value for `quote` (`delayed`: as of the caller's plan's delay); `None` when
    /// its resolver would fail (a quote from a source the enum does not know: a bug).
    pub fn value(self, quote: &Quote, delayed: bool) -> Option<Value> {
        let decimal = |d| ScalarType::to_value(&DecimalString(d));
        let optional = |d: Option<rust_decimal::Decimal>| d.map_or(Value::Null, decimal);
        Some(match self {
            Self::Typename => Value::String(QuoteObject::type_name().into_owned()),
            Self::Id => Value::String(GlobalId::of::<QuoteObject>(quote.symbol.as_str()).0),
            Self::Symbol => Value::String(quote.symbol.as_str().to_owned()),
            Self::Last => decimal(quote.last),
            Self::Open => decimal(quote.open),
            Self::High => decimal(quote.high),
            Self::Low => decimal(quote.low),
            Self::PrevClose => decimal(quote.prev_close),
            Self::Change => decimal(quote.change()),
            Self::ChangePercent => optional(quote.change_percent()),
            Self::Volume => optional(quote.volume),
            Self::Turnover => optional(quote.turnover),
            Self::Timestamp => ScalarType::to_value(&Timestamp(quote.timestamp)),
            Self::TradingStatus => TradingStatusGql::from(quote.trading_status).to_value(),
            Self::Source => QuoteSource::of(quote.source).ok()?.to_value(),
            Self::Stale => Value::Boolean(quote.stale),
            Self::Delayed => Value::Boolean(delayed),
        })
    }
}
