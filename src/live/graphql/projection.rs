//! Live quotes served without executing the schema on every event.
//!
//! Most live clients subscribe to a plain projection of quotes:
//! `subscription($s: [String!]!) { quotes(symbols: $s) { symbol last timestamp } }`. Run
//! through async-graphql, every event costs every subscriber an execution (a future per field,
//! a response tree) and a serialisation, and each operation holds async-graphql's per-request
//! state for as long as it lives. For such a document the result of an event depends only on
//! the event, the selection and whether the caller's plan has the market delayed, so here it is
//! rendered once per (event, selection, delayed) and the bytes are shared by every subscriber
//! asking the same (`SharedEvent::rendering`); a subscriber copies them into its message.
//!
//! Only what is certainly a plain projection takes this path: one subscription operation
//! without directives or fragments, whose one field is `quotes` with literal or variable
//! `symbols` and `throttleMs`, selecting only `Quote`'s argument-free scalar and enum fields
//! (`market::graphql::QuoteField`), each response key once. Everything else runs through the
//! schema, and so does a projection whose admission fails: the refusal the client gets is then
//! the schema's own, word for word.

use std::sync::Arc;

use async_graphql::{
    Name, Response, Value, Variables,
    indexmap::IndexMap,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{
    MAX_THROTTLE_MS,
    admission::{LiveServices, admit},
    events::{Delivered, events},
};
use crate::{
    graphql::guard,
    identity::Principal,
    live::{Channel, LiveEvent},
    market::{Quote, graphql::QuoteField},
};

/// A `quotes` subscription that only projects fields of each quote.
#[derive(Debug)]
pub struct Projection {
    symbols: Vec<String>,
    throttle_ms: Option<i32>,
    /// The root field's response key (`quotes`, or its alias).
    root: Name,
    fields: Vec<(Name, QuoteField)>,
    /// What the rendering of an event depends on besides the event, for a real-time and a
    /// delayed subscriber: the shared renderings' keys.
    keys: [Arc<str>; 2],
}

impl Projection {
    /// The projection `document` asks for with `variables`, if it is a plain one.
    pub fn of(document: &ExecutableDocument, operation_name: Option<&str>, variables: &Variables) -> Option<Self> {
        if !document.fragments.is_empty() {
            return None;
        }
        // The operation must be the document's only one (others would be validated too), and
        // the one `operation_name` names, if it names one.
        let operation = match (&document.operations, operation_name) {
            (DocumentOperations::Single(operation), None) => &operation.node,
            (DocumentOperations::Multiple(operations), name) if operations.len() == 1 => {
                let (named, operation) = operations.iter().next()?;
                if name.is_some_and(|name| name != named.as_str()) {
                    return None;
                }
                &operation.node
            }
            _ => return None,
        };
        if operation.ty != OperationType::Subscription || !operation.directives.is_empty() {
            return None;
        }
        let [root] = operation.selection_set.node.items.as_slice() else { return None };
        let Selection::Field(root) = &root.node else { return None };
        let root = &root.node;
        if root.name.node != "quotes" || !root.directives.is_empty() {
            return None;
        }
        // Every variable the operation declares must be one these arguments use (an unused
        // one is a validation error, left to the schema), of the type the argument takes.
        let mut used = Vec::new();
        let (mut symbols, mut throttle_ms) = (None, None);
        for (name, value) in &root.arguments {
            let expected = match name.node.as_str() {
                "symbols" => "[String!]!",
                "throttleMs" => "Int",
                _ => return None,
            };
            let value = value.node.clone().into_const_with(|variable| {
                let definition = operation.variable_definitions.iter().find(|d| d.node.name.node == variable);
                let definition = definition.ok_or(())?;
                let declared = definition.node.var_type.node.to_string();
                if declared != expected && declared.strip_suffix('!') != Some(expected) {
                    return Err(());
                }
                used.push(variable.clone());
                match variables.get(&variable) {
                    Some(value) => Ok(value.clone()),
                    None => definition.node.default_value().cloned().ok_or(()),
                }
            });
            match (name.node.as_str(), value.ok()?) {
                ("symbols", Value::List(items)) => {
                    let items = items.into_iter().map(|item| match item {
                        Value::String(symbol) => Some(symbol),
                        _ => None,
                    });
                    symbols = Some(items.collect::<Option<Vec<_>>>()?);
                }
                ("throttleMs", Value::Null) => {}
                ("throttleMs", Value::Number(ms)) => throttle_ms = Some(i32::try_from(ms.as_i64()?).ok()?),
                _ => return None,
            }
        }
        if operation.variable_definitions.iter().any(|d| !used.contains(&d.node.name.node)) {
            return None;
        }
        let mut fields: Vec<(Name, QuoteField)> = Vec::new();
        for item in &root.selection_set.node.items {
            let Selection::Field(field) = &item.node else { return None };
            let field = &field.node;
            if !field.arguments.is_empty() || !field.directives.is_empty() || !field.selection_set.node.items.is_empty()
            {
                return None;
            }
            let key = field.response_key().node.clone();
            if fields.iter().any(|(seen, _)| *seen == key) {
                return None;
            }
            fields.push((key, QuoteField::named(&field.name.node)?));
        }
        if fields.is_empty() {
            return None;
        }
        let root_key = root.response_key().node.clone();
        // Names are `[_A-Za-z][_0-9A-Za-z]*`: the separators cannot occur inside one.
        let shape: String = fields.iter().map(|(key, field)| format!("{key}:{field:?},")).collect();
        let key = |delayed: &str| Arc::from(format!("quotes|{delayed}|{root_key}|{shape}"));
        let keys = [key("realtime"), key("delayed")];
        Some(Self { symbols: symbols?, throttle_ms, root: root_key, fields, keys })
    }

    /// `{"data":{ROOT:{…}}}` for one quote.
    fn render(&self, quote: &Quote, delayed: bool) -> Bytes {
        let fields: Option<IndexMap<Name, Value>> =
            self.fields.iter().map(|(key, field)| Some((key.clone(), field.value(quote, delayed)?))).collect();
        let response = match fields {
            Some(fields) => Response::new(Value::Object(IndexMap::from([(self.root.clone(), Value::Object(fields))]))),
            // What the schema would fail the event with: a quote from a source the schema's
            // enum does not know, a bug.
            None => {
                tracing::error!(symbol = %quote.symbol, source = quote.source, "a live quote from an unknown source");
                Response::from_errors(vec![guard::internal_error()])
            }
        };
        Bytes::from(serde_json::to_vec(&response).unwrap_or_default())
    }
}

/// Admits `projection` for `principal` and returns its events, each rendered (once per
/// selection, among every subscriber of the same topic) as a `next` payload. `None` when the
/// schema must run it instead: a refusal, which the schema then words.
pub async fn start(
    services: LiveServices<'_>,
    principal: &Principal,
    mut projection: Projection,
) -> Option<impl Stream<Item = Bytes> + Send + use<>> {
    let throttle = match projection.throttle_ms {
        None | Some(0) => None,
        Some(ms @ 1..=MAX_THROTTLE_MS) => Some(std::time::Duration::from_millis(ms as u64)),
        Some(_) => return None,
    };
    // Held by the admission from here: the projection (kept for as long as the subscription)
    // need not keep a copy.
    let symbols = std::mem::take(&mut projection.symbols);
    let admitted = admit(&services, principal, &symbols, Channel::Quote).await.ok()?;
    let projection = Arc::new(projection);
    Some(events(admitted, throttle).filter_map(move |event| {
        let projection = projection.clone();
        async move { projection.rendering(&event.ok()?) }
    }))
}

impl Projection {
    /// The payload of one delivered quote: the shared rendering for this selection (and
    /// delay), made now if nobody made it yet.
    fn rendering(&self, delivered: &Delivered) -> Option<Bytes> {
        let delayed = delivered.delayed;
        delivered.event.rendering(&self.keys[usize::from(delayed)], |event| match event {
            LiveEvent::Quote(quote) => Some(self.render(quote, delayed)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use rust_decimal::Decimal;

    use super::*;
    use crate::{
        live::SharedEvent,
        market::{Tick, TradingStatus},
        reference::Symbol,
    };

    const PLAIN: &str = "subscription($s: [String!]!, $t: Int) { quotes(symbols: $s, throttleMs: $t) { symbol last } }";

    fn projection(query: &str, operation_name: Option<&str>, variables: serde_json::Value) -> Option<Projection> {
        let document = parse_query(query).unwrap();
        Projection::of(&document, operation_name, &Variables::from_json(variables))
    }

    #[test]
    fn plain_projections_are_recognised() {
        let vars = serde_json::json!({ "s": ["AAPL.US"], "t": 500 });
        let plain = projection(PLAIN, None, vars.clone()).expect("plain");
        assert_eq!((plain.symbols.as_slice(), plain.throttle_ms), (&["AAPL.US".to_owned()][..], Some(500)));
        let literal =
            r#"subscription { live: quotes(symbols: ["AAPL.US", "700.HK"], throttleMs: 0) { p: last id __typename } }"#;
        let literal = projection(literal, None, serde_json::json!({})).expect("literal arguments, aliases");
        assert_eq!(literal.root.as_str(), "live");
        assert_eq!(literal.fields.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(), ["p", "id", "__typename"]);
        let named = "subscription Live($s: [String!]!) { quotes(symbols: $s) { last } }";
        assert!(projection(named, Some("Live"), vars.clone()).is_some());
        assert!(projection(named, None, vars.clone()).is_some(), "the only operation");
        let defaulted = "subscription($s: [String!]! = [\"AAPL.US\"], $t: Int = 100) { quotes(symbols: $s, throttleMs: $t) { last } }";
        let defaulted = projection(defaulted, None, serde_json::json!({})).expect("defaults");
        assert_eq!(defaulted.throttle_ms, Some(100));
        // Null throttle, as the variable's absence.
        assert_eq!(projection(PLAIN, None, serde_json::json!({ "s": ["AAPL.US"] })).unwrap().throttle_ms, None);
    }

    #[test]
    fn anything_else_is_left_to_the_schema() {
        let vars = serde_json::json!({ "s": ["AAPL.US"] });
        for (why, query, name) in [
            ("a query", "query { quotes(symbols: [\"AAPL.US\"]) { last } }", None),
            ("another root field", "subscription { ticks(symbols: [\"AAPL.US\"]) { price } }", None),
            (
                "two root fields",
                "subscription($s: [String!]!) { quotes(symbols: $s) { last } b: quotes(symbols: $s) { last } }",
                None,
            ),
            (
                "a fragment",
                "subscription($s: [String!]!) { quotes(symbols: $s) { ...F } } fragment F on Quote { last }",
                None,
            ),
            (
                "an inline fragment",
                "subscription($s: [String!]!) { quotes(symbols: $s) { ... on Quote { last } } }",
                None,
            ),
            ("a directive", "subscription($s: [String!]!) { quotes(symbols: $s) { last @include(if: true) } }", None),
            ("an operation directive", "subscription($s: [String!]!) @x { quotes(symbols: $s) { last } }", None),
            ("an unknown field", "subscription($s: [String!]!) { quotes(symbols: $s) { last nope } }", None),
            ("a repeated key", "subscription($s: [String!]!) { quotes(symbols: $s) { a: last a: open } }", None),
            ("an unused variable", "subscription($s: [String!]!, $x: Int) { quotes(symbols: $s) { last } }", None),
            ("an undeclared variable", "subscription { quotes(symbols: $s) { last } }", None),
            ("a variable of another type", "subscription($s: [String]) { quotes(symbols: $s) { last } }", None),
            (
                "a missing variable",
                "subscription($s: [String!]!, $t: Int!) { quotes(symbols: $s, throttleMs: $t) { last } }",
                None,
            ),
            ("a lone string for a list", "subscription { quotes(symbols: \"AAPL.US\") { last } }", None),
            ("an unknown argument", "subscription($s: [String!]!) { quotes(symbols: $s, depth: 1) { last } }", None),
            ("no selection", "subscription($s: [String!]!) { quotes(symbols: $s) }", None),
            ("another operation's name", "subscription A($s: [String!]!) { quotes(symbols: $s) { last } }", Some("B")),
            ("a name for an anonymous one", "subscription($s: [String!]!) { quotes(symbols: $s) { last } }", Some("A")),
            (
                "two operations",
                "subscription A($s: [String!]!) { quotes(symbols: $s) { last } } query B { __typename }",
                Some("A"),
            ),
        ] {
            assert!(projection(query, name, vars.clone()).is_none(), "{why}: {query}");
        }
        let huge = serde_json::json!({ "s": ["AAPL.US"], "t": 1_i64 << 40 });
        assert!(projection(PLAIN, None, huge).is_none(), "a throttle past i32");
        let mixed = serde_json::json!({ "s": ["AAPL.US", 1] });
        assert!(projection(PLAIN, None, mixed).is_none(), "a symbol that is not a string");
    }

    fn quote_event(last: i64) -> Arc<SharedEvent> {
        SharedEvent::new(LiveEvent::Quote(Quote {
            symbol: Symbol::parse("AAPL.US").unwrap(),
            last: Decimal::new(last, 2),
            open: Decimal::new(10000, 2),
            high: Decimal::new(20000, 2),
            low: Decimal::new(5000, 2),
            prev_close: Decimal::new(10000, 2),
            volume: None,
            turnover: Some(Decimal::new(12345, 1)),
            timestamp: "2026-12-02T14:30:00.5Z".parse().unwrap(),
            trading_status: TradingStatus::Normal,
            source: "itick",
            stale: false,
        }))
    }

    #[test]
    fn subscribers_of_one_selection_share_one_rendering() {
        let vars = serde_json::json!({ "s": ["AAPL.US"] });
        let query = "subscription($s: [String!]!) { q: quotes(symbols: $s) { symbol last changePercent volume turnover timestamp tradingStatus source stale delayed } }";
        let (one, two) =
            (projection(query, None, vars.clone()).unwrap(), projection(query, None, vars.clone()).unwrap());
        let event = quote_event(12345);
        let delivered = |delayed| Delivered { event: event.clone(), delayed };
        let (a, b) = (one.rendering(&delivered(false)).unwrap(), two.rendering(&delivered(false)).unwrap());
        assert_eq!(a.as_ptr(), b.as_ptr(), "the second subscriber copies the first one's bytes");
        assert_eq!(
            std::str::from_utf8(&a).unwrap(),
            r#"{"data":{"q":{"symbol":"AAPL.US","last":"123.45","changePercent":"23.4500","volume":null,"turnover":"1234.5","timestamp":"2026-12-02T14:30:00.500000Z","tradingStatus":"NORMAL","source":"ITICK","stale":false,"delayed":false}}}"#
        );
        let late = two.rendering(&delivered(true)).unwrap();
        assert_ne!(late.as_ptr(), a.as_ptr());
        assert!(std::str::from_utf8(&late).unwrap().contains(r#""delayed":true"#));
        let other = projection("subscription($s: [String!]!) { q: quotes(symbols: $s) { last } }", None, vars).unwrap();
        assert_eq!(
            std::str::from_utf8(&other.rendering(&delivered(false)).unwrap()).unwrap(),
            r#"{"data":{"q":{"last":"123.45"}}}"#
        );
        // Not a quote: nothing to render.
        let tick = SharedEvent::new(LiveEvent::Tick(Tick {
            symbol: Symbol::parse("AAPL.US").unwrap(),
            price: Decimal::ONE,
            volume: Decimal::ONE,
            timestamp: chrono::Utc::now(),
            direction: None,
            source: "simulated",
        }));
        assert!(one.rendering(&Delivered { event: tick, delayed: false }).is_none());
    }
}
