//! What an operation costs once executed, measured on the document without expanding it.
//!
//! async-graphql measures depth and complexity by visiting every fragment spread in place. In a
//! document whose fragments each spread the next one twice, that visit is itself exponential
//! (22 levels: four million visits, 1.4 s and 794 MB before any limit could refuse it), and
//! `__typename` counts for neither, so such a bomb passed every limit. Here each fragment is
//! measured once, after the fragments it spreads (memoised: linear in the document's size), and a
//! spread adds its fragment's measure every time it appears. The counts are those of the
//! expanded document, which is never built.
//!
//! The spread graph is walked with an explicit stack, so a chain of 10,000 fragments cannot
//! overflow the thread's stack, and a cycle is reported rather than followed. Within one fragment
//! or operation the walk recurses over nested selection sets, which the parser caps at 64 levels.
//! (Past the limits checked on these measures, async-graphql's own recursive walks are safe: none
//! goes deeper than 32 levels.)

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};

/// The mutations that check or issue credentials. Each one is a password guess or a new
/// account, so a request may carry one (see `check_document`), not thirty aliased copies.
pub const AUTH_MUTATIONS: [&str; 3] = ["login", "signUp", "refreshToken"];

/// One operation (or fragment, or selection set) as it would execute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Field selections executed, `__typename` included: it costs a resolver call and a key in
    /// the response like any other field.
    pub fields: u64,
    /// Aliased field selections executed.
    pub aliases: u64,
    /// Fields nested in fields, counted as async-graphql counts depth (`__typename`, a leaf that
    /// cannot nest, adds none), so the two checks agree.
    pub depth: u64,
    /// Levels of selection sets, as async-graphql counts its recursion depth: a field with a
    /// selection set, an inline fragment and a spread each add one.
    pub nesting: u64,
    /// Fields named in [`AUTH_MUTATIONS`] at the root of a mutation.
    pub auth_mutations: u64,
}

impl Cost {
    /// Two selections side by side: counts add up, depths take the deeper.
    fn beside(self, other: Self) -> Self {
        Self {
            fields: self.fields.saturating_add(other.fields),
            aliases: self.aliases.saturating_add(other.aliases),
            depth: self.depth.max(other.depth),
            nesting: self.nesting.max(other.nesting),
            auth_mutations: self.auth_mutations.saturating_add(other.auth_mutations),
        }
    }

    /// The worst of two operations, measure by measure (only one operation of a document runs,
    /// but which one is the client's choice).
    pub fn worst(self, other: Self) -> Self {
        Self {
            fields: self.fields.max(other.fields),
            aliases: self.aliases.max(other.aliases),
            depth: self.depth.max(other.depth),
            nesting: self.nesting.max(other.nesting),
            auth_mutations: self.auth_mutations.max(other.auth_mutations),
        }
    }

    /// The selection one level further in (under a field, an inline fragment or a spread).
    fn nested(self) -> Self {
        Self { nesting: self.nesting.saturating_add(1), ..self }
    }
}

/// A fragment that spreads itself, directly or through others (invalid GraphQL, and an endless
/// expansion).
#[derive(Debug, PartialEq, Eq)]
pub struct FragmentCycle(pub String);

/// The cost of each operation of `doc`.
pub fn measure(doc: &ExecutableDocument) -> Result<Vec<Cost>, FragmentCycle> {
    let fragments = fragment_costs(doc)?;
    Ok(doc
        .operations
        .iter()
        .map(|(_, operation)| {
            let cost = selection_set(&operation.node.selection_set.node, &fragments);
            match operation.node.ty {
                OperationType::Mutation => cost,
                OperationType::Query | OperationType::Subscription => Cost { auth_mutations: 0, ..cost },
            }
        })
        .collect())
}

/// Every fragment's cost, each measured once, after the fragments it spreads.
fn fragment_costs(doc: &ExecutableDocument) -> Result<HashMap<&str, Cost>, FragmentCycle> {
    let mut costs: HashMap<&str, Cost> = HashMap::with_capacity(doc.fragments.len());
    // Fragments whose spreads are being measured: the path from the fragment the walk started
    // at. Meeting one of them again is a cycle.
    let mut open: HashSet<&str> = HashSet::new();
    // (fragment, whether its spreads are measured already)
    let mut stack: Vec<(&str, bool)> = doc.fragments.keys().map(|name| (name.as_str(), false)).collect();
    while let Some((name, spreads_measured)) = stack.pop() {
        // A spread of an unknown fragment costs nothing here; validation names it.
        let Some(fragment) = doc.fragments.get(name) else { continue };
        let selections = &fragment.node.selection_set.node;
        if spreads_measured {
            open.remove(name);
            costs.insert(name, selection_set(selections, &costs));
            continue;
        }
        if costs.contains_key(name) {
            continue;
        }
        if !open.insert(name) {
            return Err(FragmentCycle(name.to_owned()));
        }
        stack.push((name, true));
        for_each_spread(selections, &mut |spread| {
            if !costs.contains_key(spread) {
                stack.push((spread, false));
            }
        });
    }
    Ok(costs)
}

fn for_each_spread<'a>(set: &'a SelectionSet, visit: &mut impl FnMut(&'a str)) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => for_each_spread(&field.node.selection_set.node, visit),
            Selection::InlineFragment(inline) => for_each_spread(&inline.node.selection_set.node, visit),
            Selection::FragmentSpread(spread) => visit(spread.node.fragment_name.node.as_str()),
        }
    }
}

/// The cost of a selection set, given the cost of every fragment it spreads.
fn selection_set(set: &SelectionSet, fragments: &HashMap<&str, Cost>) -> Cost {
    set.items.iter().fold(Cost::default(), |total, item| total.beside(selection(&item.node, fragments)))
}

fn selection(item: &Selection, fragments: &HashMap<&str, Cost>) -> Cost {
    match item {
        Selection::Field(field) => {
            let field = &field.node;
            let name = field.name.node.as_str();
            let inner = selection_set(&field.selection_set.node, fragments);
            Cost {
                fields: inner.fields.saturating_add(1),
                aliases: inner.aliases.saturating_add(u64::from(field.alias.is_some())),
                depth: inner.depth.saturating_add(u64::from(name != "__typename")),
                nesting: if field.selection_set.node.items.is_empty() { 0 } else { inner.nesting.saturating_add(1) },
                // Only this field's own name: below the root, no field is a mutation.
                auth_mutations: u64::from(AUTH_MUTATIONS.contains(&name)),
            }
        }
        Selection::InlineFragment(inline) => selection_set(&inline.node.selection_set.node, fragments).nested(),
        Selection::FragmentSpread(spread) => {
            fragments.get(spread.node.fragment_name.node.as_str()).copied().unwrap_or_default().nested()
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn cost(query: &str) -> Cost {
        let costs = measure(&parse_query(query).expect("valid syntax")).expect("no cycle");
        costs.into_iter().fold(Cost::default(), Cost::worst)
    }

    /// `levels` fragments, each spreading the next twice; the last selects `__typename`.
    fn bomb(levels: usize) -> String {
        let mut doc = String::from("{ ...F0 }");
        for level in 0..levels {
            let next = level + 1;
            doc.push_str(&format!(" fragment F{level} on Query {{ ...F{next} ...F{next} }}"));
        }
        doc.push_str(&format!(" fragment F{levels} on Query {{ __typename }}"));
        doc
    }

    #[test]
    fn plain_fields_are_counted_with_their_depth() {
        let cost = cost("{ a { b c { d } } e: f __typename }");
        assert_eq!(cost.fields, 6);
        assert_eq!(cost.aliases, 1);
        assert_eq!(cost.depth, 3, "a > c > d");
        assert_eq!(cost.nesting, 2, "a's and c's selection sets");
    }

    #[test]
    fn a_fragment_counts_every_time_it_is_spread() {
        let cost = cost("{ a { ...F } b { ...F ...F } } fragment F on T { x: c d { e } }");
        assert_eq!(cost.fields, 2 + 3 * 3);
        assert_eq!(cost.aliases, 3, "an alias inside a fragment spread three times counts three times");
        assert_eq!(cost.depth, 3, "a > d > e, through the spread");
    }

    #[test]
    fn the_doubling_bomb_is_measured_not_expanded() {
        for levels in [10, 22, 30, 60, 1000] {
            let started = std::time::Instant::now();
            let cost = cost(&bomb(levels));
            let expected = 1u64.checked_shl(levels as u32).filter(|_| levels < 64).unwrap_or(u64::MAX);
            assert_eq!(cost.fields, expected, "{levels} levels");
            assert_eq!(cost.depth, 0, "`__typename` is no depth");
            assert_eq!(cost.nesting, levels as u64 + 1, "one spread per level, then the last spread");
            // Expanded, 2^60 fields would never finish; measured, it is microseconds (the bound
            // leaves room for an unoptimised build on a loaded machine).
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "{levels} levels took long");
        }
    }

    #[test]
    fn a_chain_of_ten_thousand_fragments_does_not_overflow_the_stack() {
        let levels = 10_000;
        let mut doc = String::from("{ ...F0 }");
        for level in 0..levels {
            doc.push_str(&format!(" fragment F{level} on Query {{ ...F{} }}", level + 1));
        }
        doc.push_str(&format!(" fragment F{levels} on Query {{ __typename }}"));
        let cost = cost(&doc);
        assert_eq!(cost.fields, 1);
        assert_eq!(cost.nesting, levels as u64 + 1);
    }

    #[test]
    fn cycles_are_reported_not_followed() {
        let cycle = |query: &str| measure(&parse_query(query).unwrap()).unwrap_err();
        assert_eq!(cycle("{ ...A } fragment A on Query { ...A }"), FragmentCycle("A".into()));
        let long =
            cycle("{ ...A } fragment A on Query { x { ...B } } fragment B on X { ...C } fragment C on X { ...A }");
        assert!(["A", "B", "C"].contains(&long.0.as_str()), "{long:?}");
        // Sharing is not a cycle: B and C both spread D.
        let diamond = "{ ...A } fragment A on Query { ...B ...C } fragment B on Query { ...D } \
                       fragment C on Query { ...D } fragment D on Query { a }";
        assert_eq!(cost(diamond).fields, 2);
    }

    #[test]
    fn unknown_fragments_cost_nothing_here() {
        assert_eq!(cost("{ a ...Missing }").fields, 1);
    }

    #[test]
    fn auth_mutations_are_counted_at_the_root_of_mutations_only() {
        let login = r#"login(email: "a@b.c", password: "x") { accessToken refreshToken }"#;
        assert_eq!(cost(&format!("mutation {{ {login} }}")).auth_mutations, 1);
        assert_eq!(
            cost(&format!("mutation {{ a: {login} ...L ... on Mutation {{ signUp(input: {{}}) {{ id }} }} }} fragment L on Mutation {{ b: {login} c: refreshToken(token: \"t\") {{ accessToken }} }}"))
                .auth_mutations,
            4
        );
        // `refreshToken` inside a payload is a field of AuthPayload, not a mutation.
        assert_eq!(cost("mutation { logout(refreshToken: \"t\") { refreshToken } }").auth_mutations, 0);
        assert_eq!(cost("{ login }").auth_mutations, 0, "not a mutation");
        // Two operations of which one runs: the worst one counts.
        assert_eq!(cost(&format!("mutation A {{ {login} }} mutation B {{ {login} }}")).auth_mutations, 1);
    }
}
