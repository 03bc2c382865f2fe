//! Admission of a subscription: the caller, its plan's entitlement to every symbol, the
//! tenant's live quota, then the hub's topics.

use std::{collections::HashMap, time::Duration};

use async_graphql::{Context, ErrorExtensions, Result};
use futures::future::try_join_all;

use crate::{
    config::{Access, LiveSettings},
    error::{AppError, ErrorCode},
    graphql::{RequestContext, service},
    identity::{Principal, Scope},
    live::{
        Channel, LiveHub, LiveQuotas, Topic,
        delay::DelayMeter,
        hub::Subscription as HubSubscription,
        quotas::{Refusal, SymbolsLease},
    },
    market::{MarketService, entitlements, service::require_order_book},
    reference::Symbol,
};

/// A subscription admitted: its hub topics, the symbols it holds against the tenant's
/// `max_live_symbols`, and which of its symbols are delayed (and by how much).
pub(super) struct Admitted {
    pub(super) subscription: HubSubscription,
    /// Given back when the stream is dropped.
    pub(super) lease: SymbolsLease,
    pub(super) delayed: HashMap<Symbol, Duration>,
    pub(super) settings: LiveSettings,
    pub(super) meter: DelayMeter,
}

/// What admitting a subscription needs: the app's live services, from a request's context or
/// from the app's state (`projection`, which runs without one).
pub struct LiveServices<'a> {
    pub settings: &'a LiveSettings,
    pub market: &'a MarketService,
    pub quotas: &'a LiveQuotas,
    pub hub: &'a LiveHub,
}

/// [`admit`] with the request's caller and services.
pub(super) async fn subscribe(ctx: &Context<'_>, symbols: &[String], channel: Channel) -> Result<Admitted> {
    let services = LiveServices {
        settings: service::<LiveSettings>(ctx)?,
        market: service::<MarketService>(ctx)?,
        quotas: service::<LiveQuotas>(ctx)?,
        hub: service::<LiveHub>(ctx)?,
    };
    admit(&services, &RequestContext::of(ctx)?.principal, symbols, channel).await
}

/// Checks the caller, its plan's entitlement to every symbol and its live quota, then
/// subscribes to the symbols' topics on `channel`.
pub(super) async fn admit(
    services: &LiveServices<'_>,
    principal: &Principal,
    symbols: &[String],
    channel: Channel,
) -> Result<Admitted> {
    // Live data is licensed per tenant: a user's token or a key, never anonymous.
    let tenant = principal.require_tenant()?;
    let plan = principal.require_plan()?;
    let settings = services.settings.clone();
    let max = settings.max_symbols;
    if symbols.is_empty() {
        return Err(AppError::bad_field("symbols", "give at least one symbol").into());
    }
    if symbols.len() > max {
        return Err(AppError::bad_field(
            "symbols",
            format!("at most {max} symbols per subscription (FINQL_LIVE_MAX_SYMBOLS); got {}", symbols.len()),
        )
        .into());
    }
    let parsed = symbols.iter().map(|raw| Symbol::parse(raw)).collect::<Result<Vec<_>, _>>()?;
    let mut delayed = HashMap::new();
    for symbol in &parsed {
        if entitlements::access(principal, symbol, Scope::Live)? == Access::Delayed {
            if channel == Channel::Depth {
                return Err(AppError::EntitlementRequired {
                    message: format!(
                        "order books are real-time only, and your plan (`{}`) has the {} market delayed ({symbol})",
                        plan.name,
                        entitlements::market_of(symbol)
                    ),
                    market: Some(entitlements::market_of(symbol).to_owned()),
                }
                .into());
            }
            delayed.insert(symbol.clone(), plan.delay().to_std().unwrap_or_default());
        }
    }
    let mut instruments = try_join_all(parsed.iter().map(|symbol| services.market.instrument(symbol))).await?;
    if channel == Channel::Depth {
        instruments = instruments.into_iter().map(require_order_book).collect::<Result<_, _>>()?;
    }
    let lease = services
        .quotas
        .subscribe(tenant, plan, &parsed)
        .await
        .map_err(|refusal| quota_error(&refusal, &tenant.slug, &plan.name))?;
    let topics = instruments.into_iter().map(|instrument| Topic { instrument, channel }).collect();
    let hub = services.hub;
    Ok(Admitted { subscription: hub.subscribe(topics), lease, delayed, settings, meter: hub.delays().clone() })
}

/// The error for a subscription the tenant's live quota refuses.
fn quota_error(refusal: &Refusal, tenant: &str, plan: &str) -> async_graphql::Error {
    match refusal {
        Refusal::Exceeded { limit, max, held } => {
            let message = format!(
                "live quota exceeded: tenant `{tenant}` follows {held} distinct symbols and this subscription \
                 would take it past {max} ({} of plan `{plan}`)",
                limit.as_str()
            );
            let (limit, max) = (limit.as_str(), *max);
            async_graphql::Error::new(message).extend_with(move |_, ext| {
                ext.set("code", ErrorCode::Forbidden.as_str());
                ext.set("reason", "QUOTA_EXCEEDED");
                ext.set("limit", limit);
                ext.set("max", max);
            })
        }
        Refusal::Unavailable => AppError::UpstreamUnavailable(
            "live quotas cannot be checked right now (shared state unavailable); try again shortly".into(),
        )
        .into(),
    }
}
