//! Object identification (Relay's `Node`): the `Node` interface over the domains' objects that
//! have a global id, and `Query.node(id:)` / `Query.nodes(ids:)`, which fetch them again.
//!
//! Why: normalised client caches (Apollo Client, urql's Graphcache, Relay) key objects by type
//! and id. With an `id` on every `Quote` and `Security`, a second query on the same instrument
//! updates the entry the first one made, and a live quote (`Subscription.quotes`, same `id`)
//! updates the quote already on screen; `node` lets a client refetch any of them by id alone.
//!
//! The ids are the kit's (`graphql::global_id`); each domain says how one of its objects is
//! found by key and who may see it (`accounts::graphql::user_node`, `ledger::graphql::
//! transaction_node`, …). Here only the dispatch, at the top of the tree beside `schema`: the
//! interface names types of three domains, which none of them may import from another.
//!
//! Who sees what: a user node is the caller's own account, a transaction one of the caller's;
//! anything else is `NOT_FOUND`, worded as for an id that names nothing, so ids leak nothing.
//! Securities and quotes are the market API's (scope `market`, the caller's plan).

use async_graphql::{Context, ID, Interface, Object, Result};
use futures::future::join_all;
use uuid::Uuid;

use crate::{
    accounts::graphql::{UserObject, user_node},
    error::AppError,
    graphql::global_id::GlobalId,
    ledger::graphql::{TransactionObject, transaction_node},
    market::graphql::{
        QuoteObject,
        quotes::load_quote,
        securities::{SecurityObject, security_node},
    },
    reference::Symbol,
};

/// At most this many ids per `nodes`: a page of transactions (the largest page any list
/// serves is 100), refetched at once, is the largest natural use; each id costs one object of
/// the plan's cost budget.
pub const MAX_NODES: usize = 100;

/// An object with a global id, which `Query.node(id:)` fetches again.
#[derive(Interface)]
#[graphql(
    name = "Node",
    field(
        name = "id",
        ty = "ID",
        desc = "The object's global id: opaque, stable, unique across types. `Query.node(id:)` fetches the object again; normalised caches key it by `__typename` and `id`."
    )
)]
pub enum Node {
    User(UserObject),
    Transaction(TransactionObject),
    Security(SecurityObject),
    Quote(QuoteObject),
}

/// What a global id names, its key parsed: decided before anything is fetched, so a malformed
/// id is the argument's fault (`BAD_USER_INPUT`), never a lookup's.
enum NodeKey {
    User(Uuid),
    Transaction(Uuid),
    Security(Symbol),
    Quote(Symbol),
}

impl NodeKey {
    fn parse(id: &str, field: &'static str) -> Result<Self, AppError> {
        let global = GlobalId::decode(id, field)?;
        let malformed = || GlobalId::malformed(id, field);
        let uuid = || Uuid::parse_str(&global.key).map_err(|_| malformed());
        let symbol = || Symbol::parse(&global.key).map_err(|_| malformed());
        if global.is::<UserObject>() {
            Ok(Self::User(uuid()?))
        } else if global.is::<TransactionObject>() {
            Ok(Self::Transaction(uuid()?))
        } else if global.is::<SecurityObject>() {
            Ok(Self::Security(symbol()?))
        } else if global.is::<QuoteObject>() {
            Ok(Self::Quote(symbol()?))
        } else {
            Err(malformed())
        }
    }

    async fn fetch(self, ctx: &Context<'_>) -> Result<Node> {
        Ok(match self {
            Self::User(id) => Node::User(user_node(ctx, id).await?),
            Self::Transaction(id) => Node::Transaction(transaction_node(ctx, id).await?),
            Self::Security(symbol) => Node::Security(security_node(ctx, symbol).await?),
            Self::Quote(symbol) => Node::Quote(load_quote(ctx, symbol).await?),
        })
    }
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object with this global id (`Node.id`): a `User` (yourself), a `Transaction` (one
    /// of yours), a `Security` or a `Quote`. A malformed id is `BAD_USER_INPUT`. Null with a
    /// `NOT_FOUND` error beside it when it names nothing you may see: another user, another
    /// user's transaction and a deleted one answer alike.
    #[graphql(cache_control(private, no_cache))]
    async fn node(&self, ctx: &Context<'_>, #[graphql(desc = "A `Node.id`.")] id: ID) -> Result<Option<Node>> {
        NodeKey::parse(&id, "id")?.fetch(ctx).await.map(Some)
    }

    /// The objects with these global ids, in the order asked (at most 100), as `node` answers
    /// each: an item is null with an error at its index (`path: ["nodes", i]`) when that id
    /// names nothing you may see. The list fails as a whole only when its argument does: a
    /// malformed id, or more than 100 (`BAD_USER_INPUT`).
    #[graphql(cache_control(private, no_cache))]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Up to 100 `Node.id`s; one asked twice answers twice.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Result<Node>>>> {
        if ids.len() > MAX_NODES {
            return Err(AppError::bad_field("ids", format!("at most {MAX_NODES} ids per request")).into());
        }
        let keys = ids.iter().map(|id| NodeKey::parse(id, "ids")).collect::<Result<Vec<_>, _>>()?;
        Ok(join_all(keys.into_iter().map(|key| key.fetch(ctx))).await.into_iter().map(Some).collect())
    }
}
