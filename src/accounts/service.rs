//! Account operations over the database. Plain Rust: no GraphQL types in or out.

use chrono::Utc;
use entity::{refresh_token, user};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    email::Email,
    password::{Password, PasswordHasher},
    tokens::{AccessToken, RefreshSecret, TokenIssuer, hash_refresh_token},
};
use crate::{
    error::{AppError, AppResult, is_unique_violation},
    identity::Role,
};

/// The longest full name accepted (characters).
const MAX_NAME_LEN: usize = 200;

/// A user as the rest of the application sees it: no password hash.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    /// `None` only for a user created before tenancy, until the first start moves them into
    /// the default tenant.
    pub tenant_id: Option<Uuid>,
    pub role: Role,
    pub created_at: chrono::DateTime<Utc>,
}

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            full_name: m.full_name,
            tenant_id: m.tenant_id,
            role: Role::parse(&m.role).unwrap_or(Role::Member),
            created_at: m.created_at,
        }
    }
}

/// What a successful sign-up, login or refresh returns.
pub struct Session {
    pub access: AccessToken,
    pub refresh_token: String,
    pub refresh_expires_at: chrono::DateTime<Utc>,
    pub user: User,
}

pub struct SignUp {
    pub email: String,
    pub password: String,
    pub full_name: String,
}

#[derive(Clone)]
pub struct AccountsService {
    db: DatabaseConnection,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    /// The tenant `signUp` joins (`FINQL_DEFAULT_TENANT`), or `None` when self sign-up is off
    /// (`FINQL_OPEN_SIGNUP=false`).
    signup_tenant: Option<Uuid>,
}

/// One message for unknown email and wrong password alike.
const BAD_CREDENTIALS: &str = "invalid email or password";
const BAD_REFRESH: &str = "invalid or expired refresh token";

impl AccountsService {
    pub fn new(
        db: DatabaseConnection,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        signup_tenant: Option<Uuid>,
    ) -> Self {
        Self { db, hasher, tokens, signup_tenant }
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    /// Self sign-up: a `MEMBER` of the default tenant, signed in.
    #[tracing::instrument(name = "accounts.sign_up", skip_all)]
    pub async fn sign_up(&self, input: SignUp) -> AppResult<Session> {
        let Some(tenant) = self.signup_tenant else {
            return Err(AppError::Forbidden(
                "self sign-up is off on this server: ask your tenant's admin for an account".into(),
            ));
        };
        let user = self.create_user(tenant, Role::Member, input).await?;
        self.start_session(user, Uuid::now_v7()).await
    }

    /// Creates an account in `tenant` with `role` (sign-up, and tenant admins' `createUser`).
    #[tracing::instrument(name = "accounts.create_user", skip_all)]
    pub async fn create_user(&self, tenant: Uuid, role: Role, input: SignUp) -> AppResult<User> {
        let email = Email::parse(&input.email)?;
        let full_name = parse_full_name(&input.full_name)?;
        let password = Password::parse(input.password)?;
        let password_hash = self.hasher.hash(password).await?;
        let now = Utc::now();
        let row = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email.as_str().to_owned()),
            full_name: Set(full_name),
            password_hash: Set(password_hash),
            tenant_id: Set(Some(tenant)),
            role: Set(role.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let user = match row.insert(&self.db).await {
            Ok(model) => User::from(model),
            Err(err) if is_unique_violation(&err) => {
                return Err(AppError::bad_field("email", "an account with this email already exists"));
            }
            Err(err) => return Err(err.into()),
        };
        tracing::info!(user_id = %user.id, tenant_id = %tenant, "account created");
        Ok(user)
    }

    #[tracing::instrument(name = "accounts.login", skip_all)]
    pub async fn login(&self, email: &str, password: String) -> AppResult<Session> {
        // A malformed address is treated exactly like an unknown one: same error, same work.
        let found = match Email::parse(email) {
            Ok(email) => user::Entity::find().filter(user::Column::Email.eq(email.as_str())).one(&self.db).await?,
            Err(_) => None,
        };
        let stored = found.as_ref().map(|u| u.password_hash.clone());
        if !self.hasher.verify(password, stored).await? {
            return Err(AppError::Unauthenticated(BAD_CREDENTIALS.into()));
        }
        let user = found.map(User::from).ok_or_else(|| AppError::Unauthenticated(BAD_CREDENTIALS.into()))?;
        self.start_session(user, Uuid::now_v7()).await
    }

    /// Exchanges a refresh token for a new pair. The presented token is spent; presenting a
    /// spent token again means it was stolen (or replayed), so its whole family is revoked.
    #[tracing::instrument(name = "accounts.refresh", skip_all)]
    pub async fn refresh(&self, token: &str) -> AppResult<Session> {
        let hash = hash_refresh_token(token.trim());
        let Some(row) =
            refresh_token::Entity::find().filter(refresh_token::Column::TokenHash.eq(hash)).one(&self.db).await?
        else {
            return Err(AppError::Unauthenticated(BAD_REFRESH.into()));
        };
        let now = Utc::now();
        // Revocation belongs to the family: a token issued to the winner of a race with a
        // replayed token may be inserted after the family was revoked, and must die with it.
        let family_revoked = refresh_token::Entity::find()
            .filter(refresh_token::Column::FamilyId.eq(row.family_id))
            .filter(refresh_token::Column::RevokedAt.is_not_null())
            .one(&self.db)
            .await?
            .is_some();
        if family_revoked {
            self.revoke_family(row.family_id).await?;
            return Err(AppError::Unauthenticated(BAD_REFRESH.into()));
        }
        if row.expires_at <= now {
            return Err(AppError::Unauthenticated(BAD_REFRESH.into()));
        }
        // Spend the token atomically: of two concurrent refreshes with one token, one wins and
        // the other is treated as reuse.
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::Id.eq(row.id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        if spent.rows_affected != 1 {
            self.revoke_family(row.family_id).await?;
            tracing::warn!(user_id = %row.user_id, family = %row.family_id, "refresh token reuse: family revoked");
            return Err(AppError::Unauthenticated(
                "refresh token already used: all sessions from that login were revoked, log in again".into(),
            ));
        }
        let user = self.user(row.user_id).await?.ok_or_else(|| AppError::Unauthenticated(BAD_REFRESH.into()))?;
        self.start_session(user, row.family_id).await
    }

    /// Revokes the session the refresh token belongs to (its whole family). Idempotent, and
    /// says nothing about whether the token existed.
    #[tracing::instrument(name = "accounts.logout", skip_all)]
    pub async fn logout(&self, token: &str) -> AppResult<()> {
        let hash = hash_refresh_token(token.trim());
        if let Some(row) =
            refresh_token::Entity::find().filter(refresh_token::Column::TokenHash.eq(hash)).one(&self.db).await?
        {
            self.revoke_family(row.family_id).await?;
        }
        Ok(())
    }

    pub async fn user(&self, id: Uuid) -> AppResult<Option<User>> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?.map(User::from))
    }

    /// Batch lookup for the `User` DataLoader.
    #[tracing::instrument(name = "accounts.users", skip_all, fields(users = ids.len()))]
    pub async fn users(&self, ids: &[Uuid]) -> AppResult<Vec<User>> {
        let rows = user::Entity::find().filter(user::Column::Id.is_in(ids.iter().copied())).all(&self.db).await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Revokes the family's refresh tokens, and its access tokens (the family id is their
    /// `sid`): on this replica at once, on the others within a second.
    async fn revoke_family(&self, family_id: Uuid) -> AppResult<()> {
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(refresh_token::Column::FamilyId.eq(family_id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        self.tokens.revocations().revoke(family_id).await;
        Ok(())
    }

    async fn start_session(&self, user: User, family_id: Uuid) -> AppResult<Session> {
        let secret = RefreshSecret::generate();
        let now = Utc::now();
        let expires_at = now + self.tokens.refresh_ttl();
        refresh_token::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user.id),
            family_id: Set(family_id),
            token_hash: Set(secret.hash),
            created_at: Set(now),
            expires_at: Set(expires_at),
            used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(Session {
            access: self.tokens.issue_access(user.id, family_id)?,
            refresh_token: secret.token,
            refresh_expires_at: expires_at,
            user,
        })
    }
}

fn parse_full_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::bad_field("fullName", "fullName must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(AppError::bad_field("fullName", format!("fullName must be at most {MAX_NAME_LEN} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::bad_field("fullName", "fullName must not contain control characters"));
    }
    Ok(name.to_owned())
}
