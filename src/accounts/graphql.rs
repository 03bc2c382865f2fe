//! GraphQL resolvers for accounts: thin wrappers over [`AccountsService`].

use async_graphql::{
    Context, ID, InputObject, Object, Result, SimpleObject,
    dataloader::{DataLoader, Loader},
};
use std::collections::HashMap;
use uuid::Uuid;

use super::service::{AccountsService, Session, SignUp, User};
use crate::{
    error::AppError,
    graphql::{RequestContext, global_id::GlobalId, scalars::Timestamp, service},
    identity::Role,
    throttle::AuthThrottle,
};

/// An account holder.
pub struct UserObject(pub User);

/// A person with an account: a member or admin of one tenant, owner of their own ledger.
#[Object(name = "User", cache_control(private, no_cache))]
impl UserObject {
    /// The user's global id (`Node.id`), stable for the account's lifetime. Arguments that
    /// take a user's id also accept the bare UUID `id` was before global ids.
    pub async fn id(&self) -> ID {
        GlobalId::of::<Self>(&self.0.id.to_string())
    }
    /// Normalised (lower-case) email address.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// The name the user gave, trimmed (1 to 200 characters).
    async fn full_name(&self) -> &str {
        &self.0.full_name
    }
    /// When the account was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }
    /// The user's role in their tenant: `ADMIN`s manage its keys and members.
    async fn role(&self) -> UserRole {
        self.0.role.into()
    }
}

/// A user's role in their tenant.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "Role")]
pub enum UserRole {
    /// Uses the tenant's data; sees only their own ledger.
    Member,
    /// Also manages the tenant's API keys and members (never members' ledgers).
    Admin,
}

impl From<Role> for UserRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Member => Self::Member,
            Role::Admin => Self::Admin,
        }
    }
}

impl From<UserRole> for Role {
    fn from(role: UserRole) -> Self {
        match role {
            UserRole::Member => Self::Member,
            UserRole::Admin => Self::Admin,
        }
    }
}

/// A logged-in session: the tokens to authenticate with and to renew them, and the user.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuthPayload {
    /// Short-lived JWT: send as `Authorization: Bearer <accessToken>`.
    access_token: String,
    /// When `accessToken` stops being accepted (`UNAUTHENTICATED`): renew before with
    /// `refreshToken`.
    access_token_expires_at: Timestamp,
    /// Opaque, single-use: exchange with `refreshToken` for a new pair before it expires.
    refresh_token: String,
    /// When `refreshToken` stops working; after it the user must log in again.
    refresh_token_expires_at: Timestamp,
    /// Always `Bearer`.
    token_type: &'static str,
    #[graphql(skip)]
    user: User,
}

#[async_graphql::ComplexObject]
impl AuthPayload {
    /// The user the tokens authenticate.
    async fn user(&self) -> UserObject {
        UserObject(self.user.clone())
    }
}

impl From<Session> for AuthPayload {
    fn from(s: Session) -> Self {
        Self {
            access_token: s.access.token,
            access_token_expires_at: Timestamp(s.access.expires_at),
            refresh_token: s.refresh_token,
            refresh_token_expires_at: Timestamp(s.refresh_expires_at),
            token_type: "Bearer",
            user: s.user,
        }
    }
}

/// A new account's details.
#[derive(InputObject)]
pub struct SignUpInput {
    /// The login: a bare address (`ann@example.com`, no display name), at most 254
    /// characters, stored lower-case; one account per address (`BAD_USER_INPUT` when taken).
    email: String,
    /// 8 to 1024 characters.
    password: String,
    /// 1 to 200 characters after trimming, no control characters.
    full_name: String,
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The authenticated user.
    #[graphql(cache_control(private, no_cache))]
    async fn me(&self, ctx: &Context<'_>) -> Result<UserObject> {
        let id = RequestContext::of(ctx)?.user_id()?;
        let user = service::<AccountsService>(ctx)?.user(id).await?;
        // A valid token for a user that no longer exists is as good as no token.
        let user = user.ok_or_else(|| AppError::Unauthenticated("invalid access token".into()))?;
        Ok(UserObject(user))
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Creates an account and logs it in. Each client address has a sign-up rate
    /// (`RATE_LIMITED` with `extensions.retryAfter` beyond it).
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account's details.")] input: SignUpInput,
    ) -> Result<AuthPayload> {
        let (rc, accounts, throttle) = throttled(ctx)?;
        let sign_up =
            accounts.sign_up(SignUp { email: input.email, password: input.password, full_name: input.full_name });
        Ok(throttle.sign_up(rc.client.addr, sign_up).await?.into())
    }

    /// Logs in. Repeated failures for one email slow further attempts down, and each client
    /// address has a rate: either answers `RATE_LIMITED` with `extensions.retryAfter` (seconds).
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's email address, in any case.")] email: String,
        #[graphql(desc = "The account's password. A wrong email or password is the same `UNAUTHENTICATED`.")]
        password: String,
    ) -> Result<AuthPayload> {
        let (rc, accounts, throttle) = throttled(ctx)?;
        let login = accounts.login(&email, password);
        Ok(throttle.login(&email, rc.client.addr, login).await?.into())
    }

    /// Exchanges a refresh token for a new access/refresh pair. Each refresh token works once.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The `refreshToken` of the latest `AuthPayload`; a used or expired one is `UNAUTHENTICATED`."
        )]
        token: String,
    ) -> Result<AuthPayload> {
        let (rc, accounts, throttle) = throttled(ctx)?;
        Ok(throttle.refresh(rc.client.addr, accounts.refresh(&token)).await?.into())
    }

    /// Ends the session the refresh token belongs to. Always `true`.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session's refresh token; an unknown or used one is not an error.")] refresh_token: String,
    ) -> Result<bool> {
        service::<AccountsService>(ctx)?.logout(&refresh_token).await?;
        Ok(true)
    }
}

/// What the throttled mutations need: the client (its address), the service and the throttle.
fn throttled<'a>(ctx: &Context<'a>) -> Result<(&'a RequestContext, &'a AccountsService, &'a AuthThrottle), AppError> {
    Ok((RequestContext::of(ctx)?, service::<AccountsService>(ctx)?, service::<AuthThrottle>(ctx)?))
}

/// Attaches this domain's per-request DataLoader (`User` look-ups) to a GraphQL request.
pub fn attach_loaders(request: async_graphql::Request, accounts: &AccountsService) -> async_graphql::Request {
    request.data(DataLoader::new(UserLoader(accounts.clone()), tokio::spawn))
}

/// Batches `User` lookups of one request into one query.
pub struct UserLoader(AccountsService);

impl Loader<Uuid> for UserLoader {
    type Value = User;
    /// A database error, shared by the fields that waited on the batch; it keeps its
    /// `extensions.code` (`AppError`'s conversion).
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> std::result::Result<HashMap<Uuid, User>, Self::Error> {
        let users = self.0.users(keys).await?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// The user a global id names (`Query.node`): the caller's own account only. Another user's
/// id is `NOT_FOUND` with the same message as a missing one, so `node` tells no one who else
/// has an account (tenant admins see their members through `Tenant.members`).
pub async fn user_node(ctx: &Context<'_>, id: Uuid) -> Result<UserObject> {
    if RequestContext::of(ctx)?.user_id()? != id {
        return Err(AppError::NotFound("user not found".into()).into());
    }
    load_user(ctx, id).await
}

/// Loads one user through the request's DataLoader.
pub async fn load_user(ctx: &Context<'_>, id: Uuid) -> Result<UserObject> {
    let loader = service::<DataLoader<UserLoader>>(ctx)?;
    let user = loader.load_one(id).await?;
    // Records are only ever shown to their owner, the requester: a missing owner is a token
    // for a user that no longer exists.
    let user = user.ok_or_else(|| AppError::Unauthenticated("invalid access token".into()))?;
    Ok(UserObject(user))
}
