//! What a request will demand of finql, estimated from its document before it runs: the cost a
//! tenant's `cost_per_minute` budget pays, returned to the client in `extensions.cost`.
//!
//! The rules are Apollo Router's demand control ("static estimated" cost), so a client can
//! predict its bill from its query alone:
//! - each object (a field with a selection set) costs 1 per item; scalars and enums cost 0
//!   (they are read with their object); `__typename` costs 0;
//! - a list costs its size times the cost of one item. The size is the field's `first`,
//!   `last` or `limit` argument; else the length of its `symbols` or `ids` argument (one item
//!   per symbol or id: `quotes(symbols: [...])`, `nodes(ids: [...])`); else, for a field that
//!   takes a page-size argument the client left out, `ASSUMED_PAGE`; else (a list the
//!   document cannot size: order-book levels, corporate actions) `ASSUMED_LIST`;
//! - a connection (`securities(first: 20) { nodes { … } }`) passes its page size down to the
//!   lists inside it (`edges`, `nodes`), like Apollo's `@listSize(sizedFields:)`;
//! - a non-list field with a `symbols` argument (a subscription to several symbols) counts once
//!   per symbol;
//! - each root field of a mutation adds `MUTATION_COST` (a write).
//!
//! Arguments given as variables are read from the request's variables (or the variable's
//! default). Which fields are lists comes from the schema's own SDL, indexed once at start
//! ([`TypeIndex::from_sdl`](crate::graphql::guard::demand::TypeIndex::from_sdl)): the kit stays free of domain types. Fragments are costed once
//! per (fragment, inherited page size) and reused at every spread, so a document the edge
//! guards accepted (`check_document` runs first: no cycle, at most `FINQL_MAX_FIELDS` fields
//! once expanded) is costed in time linear in its text. Arithmetic saturates: an absurd
//! document costs `u64::MAX`, which no budget holds.

use std::collections::{HashMap, HashSet};

use async_graphql::{
    Name, Value, Variables,
    parser::{
        parse_schema,
        types::{
            BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition,
        },
    },
};

/// The cost of one object (per item of a list).
const OBJECT_COST: u64 = 1;
/// Added per root field of a mutation: Apollo's default for a write, which does far more work
/// (a transaction, an index update) than reading one object.
const MUTATION_COST: u64 = 10;
/// Items assumed in a page whose size the client left to the server: the default page of
/// `klines`, and the largest page of `transactions`.
const ASSUMED_PAGE: u64 = 100;
/// Items assumed in a list the document cannot size (order-book levels, corporate actions,
/// trading sessions): Apollo Router's usual `list_size` setting, and about what those hold.
const ASSUMED_LIST: u64 = 10;
/// Arguments that set how many items a list, or a connection's `edges` and `nodes`, holds.
const PAGE_ARGUMENTS: [&str; 3] = ["first", "last", "limit"];
/// The arguments that list what a list answers, one item each: symbols, and global ids.
const ITEM_ARGUMENTS: [&str; 2] = ["symbols", "ids"];

/// What the cost needs to know of one field of the schema.
#[derive(Clone, Debug)]
struct FieldShape {
    /// The named type it returns (lists and non-null unwrapped).
    returns: String,
    list: bool,
    /// Whether it takes a page-size argument (`first`, `last` or `limit`).
    paged: bool,
    /// Its type as declared, for null propagation (`graphql::nulls`).
    ty: Type,
}

/// The schema's fields, by type and name, and its root types: built once from the SDL.
#[derive(Clone, Debug, Default)]
pub struct TypeIndex {
    fields: HashMap<String, HashMap<String, FieldShape>>,
    query: String,
    mutation: String,
    subscription: String,
}

impl TypeIndex {
    /// Indexes an SDL document (`Schema::sdl()`). An SDL that does not parse (a bug: it is the
    /// schema's own) indexes nothing, and is logged: objects still cost 1 each and sized
    /// arguments still multiply, but unsized lists then count as one item.
    pub fn from_sdl(sdl: &str) -> Self {
        let mut index = Self {
            query: "Query".into(),
            mutation: "Mutation".into(),
            subscription: "Subscription".into(),
            ..Self::default()
        };
        let Ok(document) = parse_schema(sdl) else {
            tracing::warn!("the schema's SDL did not parse: query costs will not know list fields");
            return index;
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    if let Some(name) = schema.query {
                        index.query = name.node.to_string();
                    }
                    if let Some(name) = schema.mutation {
                        index.mutation = name.node.to_string();
                    }
                    if let Some(name) = schema.subscription {
                        index.subscription = name.node.to_string();
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let fields = match ty.kind {
                        TypeKind::Object(object) => object.fields,
                        TypeKind::Interface(interface) => interface.fields,
                        _ => continue,
                    };
                    let shapes = fields
                        .into_iter()
                        .map(|field| {
                            let field = field.node;
                            let (returns, list) = unwrap_type(&field.ty.node.base);
                            let paged =
                                field.arguments.iter().any(|a| PAGE_ARGUMENTS.contains(&a.node.name.node.as_str()));
                            let ty = field.ty.node;
                            (field.name.node.to_string(), FieldShape { returns, list, paged, ty })
                        })
                        .collect();
                    index.fields.insert(ty.name.node.to_string(), shapes);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        index
    }

    fn field(&self, parent: &str, name: &str) -> Option<&FieldShape> {
        self.fields.get(parent)?.get(name)
    }

    /// The type of field `name` of `parent` (an object or interface), as the schema declares it.
    pub fn field_type(&self, parent: &str, name: &str) -> Option<&Type> {
        self.field(parent, name).map(|shape| &shape.ty)
    }

    /// The root type operations of type `ty` start from.
    pub fn root(&self, ty: OperationType) -> &str {
        match ty {
            OperationType::Query => &self.query,
            OperationType::Mutation => &self.mutation,
            OperationType::Subscription => &self.subscription,
        }
    }

    /// The estimated cost of the operation `operation_name` of `document` (the only one when
    /// unnamed) with `variables`. An operation that is not there costs 0: execution refuses it.
    pub fn cost(&self, document: &ExecutableDocument, operation_name: Option<&str>, variables: &Variables) -> u64 {
        let Some(operation) = super::operation(document, operation_name) else { return 0 };
        let defaults: HashMap<&str, Value> = operation
            .variable_definitions
            .iter()
            .filter_map(|v| v.node.default_value.as_ref().map(|d| (v.node.name.node.as_str(), d.node.clone())))
            .collect();
        let root = self.root(operation.ty);
        let mut walk =
            Walk { index: self, document, variables, defaults, fragments: HashMap::new(), open: HashSet::new() };
        let mut total = walk.selection_set(&operation.selection_set.node, root, None);
        if operation.ty == OperationType::Mutation {
            let roots = root_fields(&operation.selection_set.node, document, &mut HashSet::new());
            total = total.saturating_add(roots.saturating_mul(MUTATION_COST));
        }
        total
    }
}

/// The named type under lists and non-null, and whether there was a list.
fn unwrap_type(base: &BaseType) -> (String, bool) {
    match base {
        BaseType::Named(name) => (name.to_string(), false),
        BaseType::List(inner) => (unwrap_type(&inner.base).0, true),
    }
}

/// Fields at the root of a selection set, through fragments (each spread counting again).
fn root_fields<'a>(set: &'a SelectionSet, document: &'a ExecutableDocument, open: &mut HashSet<&'a str>) -> u64 {
    set.items.iter().fold(0u64, |count, item| {
        let more = match &item.node {
            Selection::Field(field) => u64::from(field.node.name.node != "__typename"),
            Selection::InlineFragment(inline) => root_fields(&inline.node.selection_set.node, document, open),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match document.fragments.get(name) {
                    Some(fragment) if open.insert(name) => {
                        let count = root_fields(&fragment.node.selection_set.node, document, open);
                        open.remove(name);
                        count
                    }
                    _ => 0,
                }
            }
        };
        count.saturating_add(more)
    })
}

/// One costing of one operation: the variables, and fragments costed so far.
struct Walk<'a> {
    index: &'a TypeIndex,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: HashMap<&'a str, Value>,
    /// Cost of each fragment, by name and the page size its spread inherits.
    fragments: HashMap<(&'a str, Option<u64>), u64>,
    /// Fragments being costed (a cycle, which the guards refuse first, costs 0 here).
    open: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    /// The cost of `set` on type `parent`; `inherited` is the page size of the connection
    /// it sits in, for its lists.
    fn selection_set(&mut self, set: &'a SelectionSet, parent: &str, inherited: Option<u64>) -> u64 {
        let mut total = 0u64;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(field) => self.field(&field.node, parent, inherited),
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let on = inline.type_condition.as_ref().map_or(parent, |c| c.node.on.node.as_str());
                    let on = on.to_owned();
                    self.selection_set(&inline.selection_set.node, &on, inherited)
                }
                Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str(), inherited),
            };
            total = total.saturating_add(cost);
        }
        total
    }

    fn fragment(&mut self, name: &'a str, inherited: Option<u64>) -> u64 {
        if let Some(cost) = self.fragments.get(&(name, inherited)) {
            return *cost;
        }
        let Some(fragment) = self.document.fragments.get(name) else { return 0 };
        if !self.open.insert(name) {
            return 0;
        }
        let on = fragment.node.type_condition.node.on.node.to_string();
        let cost = self.selection_set(&fragment.node.selection_set.node, &on, inherited);
        self.open.remove(name);
        self.fragments.insert((name, inherited), cost);
        cost
    }

    fn field(&mut self, field: &'a async_graphql::parser::types::Field, parent: &str, inherited: Option<u64>) -> u64 {
        if field.selection_set.node.items.is_empty() {
            return 0; // a scalar or an enum (or `__typename`)
        }
        let shape = self.index.field(parent, field.name.node.as_str()).cloned();
        let page = PAGE_ARGUMENTS.iter().find_map(|name| self.count_argument(field, name));
        let symbols = self.symbols_argument(field);
        let paged = shape.as_ref().is_some_and(|s| s.paged);
        let (size, passed_down) = match &shape {
            Some(shape) if shape.list => {
                let size = page.or(symbols).or(inherited).unwrap_or(if paged { ASSUMED_PAGE } else { ASSUMED_LIST });
                (size, None)
            }
            // A connection: one object, its page size handed to the lists inside.
            _ => (symbols.unwrap_or(1), page.or(paged.then_some(ASSUMED_PAGE))),
        };
        let returns = shape.map(|s| s.returns).unwrap_or_default();
        let inner = self.selection_set(&field.selection_set.node, &returns, passed_down);
        size.saturating_mul(OBJECT_COST.saturating_add(inner))
    }

    /// An argument's value, variables resolved; `None` when absent or null.
    fn argument(&self, field: &async_graphql::parser::types::Field, name: &str) -> Option<Value> {
        let (_, value) = field.arguments.iter().find(|(n, _)| n.node == name)?;
        // A variable that is not given and has no default leaves the argument out.
        value
            .node
            .clone()
            .into_const_with(|variable| self.variable(&variable).ok_or(()))
            .ok()
            .filter(|v| *v != Value::Null)
    }

    fn variable(&self, name: &Name) -> Option<Value> {
        match self.variables.get(name) {
            Some(value) => Some(value.clone()),
            None => self.defaults.get(name.as_str()).cloned(),
        }
    }

    /// A non-negative integer argument (a page size); a negative one is refused by its
    /// resolver, so it sizes nothing here.
    fn count_argument(&self, field: &async_graphql::parser::types::Field, name: &str) -> Option<u64> {
        match self.argument(field, name)? {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// How many items the `symbols` or `ids` argument lists (a single value coerces to a list
    /// of one).
    fn symbols_argument(&self, field: &async_graphql::parser::types::Field) -> Option<u64> {
        match ITEM_ARGUMENTS.iter().find_map(|name| self.argument(field, name))? {
            Value::List(items) => Some(u64::try_from(items.len()).unwrap_or(u64::MAX)),
            Value::String(_) => Some(1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use serde_json::json;

    use super::*;

    const SDL: &str = r#"
        type Query {
            quotes(symbols: [String!]!): [Quote!]!
            quote(symbol: String!): Quote
            klines(symbol: String!, limit: Int): [Kline!]!
            securities(first: Int, after: String): SecurityConnection!
            security(symbol: String!): Security
            nodes(ids: [ID!]!): [Quote]!
        }
        type Mutation { createTransaction(amount: Int!): Transaction! logout: Boolean! }
        type Subscription { quotes(symbols: [String!]!): Quote! }
        type Quote { symbol: String! last: Float }
        type Kline { open: Float }
        type Transaction { id: ID! }
        type SecurityConnection { nodes: [Security!]! edges: [SecurityEdge!]! }
        type SecurityEdge { node: Security! }
        type Security { symbol: String! actions: [Action!]! quote: Quote }
        type Action { kind: String }
    "#;

    fn cost_with(query: &str, variables: serde_json::Value) -> u64 {
        let index = TypeIndex::from_sdl(SDL);
        let document = parse_query(query).expect("valid syntax");
        index.cost(&document, None, &Variables::from_json(variables))
    }

    fn cost(query: &str) -> u64 {
        cost_with(query, json!({}))
    }

    #[test]
    fn objects_cost_one_scalars_nothing() {
        assert_eq!(cost(r#"{ quote(symbol: "A") { symbol last } __typename }"#), 1);
        assert_eq!(cost(r#"{ a: quote(symbol: "A") { symbol } b: quote(symbol: "B") { symbol } }"#), 2);
        assert_eq!(cost(r#"{ security(symbol: "A") { symbol quote { last } } }"#), 2);
    }

    #[test]
    fn lists_multiply_by_their_symbols_or_page() {
        let ten = (0..10).map(|i| format!("\"S{i}.US\"")).collect::<Vec<_>>().join(",");
        assert_eq!(cost(&format!("{{ quotes(symbols: [{ten}]) {{ symbol last }} }}")), 10);
        assert_eq!(cost(r#"{ nodes(ids: ["a", "b", "c"]) { symbol } }"#), 3);
        assert_eq!(cost(r#"{ klines(symbol: "A", limit: 30) { open } }"#), 30);
        assert_eq!(cost(r#"{ klines(symbol: "A") { open } }"#), ASSUMED_PAGE, "a page left to the server");
        // A list the document cannot size, inside a list of 3: 3 × (1 + 10 × 1).
        assert_eq!(
            cost(r#"{ quotes(symbols: ["A","B","C"]) { symbol } security(symbol: "A") { actions { kind } } }"#),
            3 + 1 + ASSUMED_LIST
        );
    }

    #[test]
    fn variables_and_their_defaults_size_lists() {
        let query = "query($s: [String!]!, $n: Int = 7) { quotes(symbols: $s) { last } klines(symbol: \"A\", limit: $n) { open } }";
        assert_eq!(cost_with(query, json!({ "s": ["A", "B"] })), 2 + 7);
        assert_eq!(cost_with(query, json!({ "s": ["A"], "n": 50 })), 1 + 50);
        assert_eq!(cost_with(query, json!({ "s": "A", "n": null })), 1 + ASSUMED_PAGE, "null: left to the server");
    }

    #[test]
    fn connections_pass_their_page_to_edges_and_nodes_through_fragments() {
        // 1 (connection) + 20 nodes × (1 + quote 1) + 20 edges × (1 + node 1).
        let query = "{ securities(first: 20) { ...Page edges { node { symbol } } } } \
                     fragment Page on SecurityConnection { nodes { symbol quote { last } } }";
        assert_eq!(cost(query), 1 + 20 * 2 + 20 * 2);
        assert_eq!(cost("{ securities { nodes { symbol } } }"), 1 + ASSUMED_PAGE);
    }

    #[test]
    fn mutations_and_subscriptions() {
        assert_eq!(cost("mutation { createTransaction(amount: 1) { id } logout }"), 1 + 2 * MUTATION_COST);
        assert_eq!(cost(r#"subscription { quotes(symbols: ["A", "B", "C"]) { last } }"#), 3);
    }

    #[test]
    fn several_operations_cost_the_one_that_runs() {
        let index = TypeIndex::from_sdl(SDL);
        let document = parse_query(
            r#"query A { quote(symbol: "A") { last } } query B { klines(symbol: "A", limit: 5) { open } }"#,
        )
        .unwrap();
        assert_eq!(index.cost(&document, Some("B"), &Variables::default()), 5);
        assert_eq!(index.cost(&document, Some("A"), &Variables::default()), 1);
        assert_eq!(index.cost(&document, Some("C"), &Variables::default()), 0);
        assert_eq!(index.cost(&document, None, &Variables::default()), 0, "ambiguous: execution refuses it");
    }

    #[test]
    fn huge_sizes_saturate() {
        let query = "{ klines(symbol: \"A\", limit: 18446744073709551615) { open } securities(first: 18446744073709551615) { nodes { quote { last } } } }";
        assert_eq!(cost(query), u64::MAX);
    }
}
