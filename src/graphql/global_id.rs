//! Global object ids (Relay's object identification): one opaque `ID` names one object of one
//! type across the whole schema, so that `Query.node(id:)` can fetch it again and normalised
//! caches (Apollo, urql's Graphcache, Relay) can key it.
//!
//! An id is standard base64 of `<Type>:<key>`, the form graphql-relay-js' `toGlobalId` writes
//! (`Transaction:0190…`, `Security:AAPL.US`): clients must treat it as opaque, but a developer
//! can still read one. The key is the type's own identity: a UUID for users and transactions, the
//! canonical symbol for securities and quotes (`FX:EURUSD` keeps its colon: only the first one
//! separates). Standard base64 (not base64url) so that no UUID, which has `-`, ever decodes as
//! a global id: an argument that takes either form (`updateTransaction(id:)`) can tell them
//! apart without guessing.
//!
//! Types and keys are strings here: the kit knows no domain. Each domain says which type it is
//! and parses its own key (`Uuid`, `Symbol::parse`).

use async_graphql::{ID, OutputType};
use base64::{Engine, engine::general_purpose::STANDARD};
use uuid::Uuid;

use crate::error::AppError;

/// A decoded global id: the type it names and that type's key, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalId {
    pub type_name: String,
    pub key: String,
}

impl GlobalId {
    /// The id of the object of `type_name` whose key is `key`.
    pub fn encode(type_name: &str, key: &str) -> ID {
        ID(STANDARD.encode(format!("{type_name}:{key}")))
    }

    /// The id of the object of GraphQL type `T` (its name as the schema has it) keyed `key`.
    pub fn of<T: OutputType>(key: &str) -> ID {
        Self::encode(&T::type_name(), key)
    }

    /// Whether this id names an object of GraphQL type `T`.
    pub fn is<T: OutputType>(&self) -> bool {
        self.type_name == T::type_name()
    }

    /// Decodes an id made by [`GlobalId::encode`]; anything else is `BAD_USER_INPUT` on `field`.
    /// Whether the type exists and the key is well-formed is for the caller to check.
    pub fn decode(id: &str, field: &'static str) -> Result<Self, AppError> {
        let malformed = || Self::malformed(id, field);
        let bytes = STANDARD.decode(id).map_err(|_| malformed())?;
        let text = String::from_utf8(bytes).map_err(|_| malformed())?;
        let (type_name, key) = text.split_once(':').ok_or_else(malformed)?;
        if type_name.is_empty() || key.is_empty() {
            return Err(malformed());
        }
        Ok(Self { type_name: type_name.to_owned(), key: key.to_owned() })
    }

    /// `BAD_USER_INPUT` on `field` for an id that names nothing (at most 64 characters of it
    /// quoted: a client may send anything).
    pub fn malformed(id: &str, field: &'static str) -> AppError {
        AppError::bad_field(field, format!("`{}` is not a valid id", shorten(id)))
    }
}

/// The key of an id that names an object of `type_name`, given either as its global id or, as
/// clients did before global ids, as the bare key (a transaction's UUID): what arguments that
/// took bare keys accept, so existing clients keep working. A global id of another type is
/// `BAD_USER_INPUT` on `field`.
pub fn key_of(id: &str, type_name: &str, field: &'static str) -> Result<String, AppError> {
    match GlobalId::decode(id, field) {
        Ok(global) if global.type_name == type_name => Ok(global.key),
        Ok(_) => Err(AppError::bad_field(field, format!("`{}` is not the id of a {type_name}", shorten(id)))),
        Err(_) => Ok(id.to_owned()),
    }
}

/// The UUID of an object of GraphQL type `T` given as either form [`key_of`] accepts (a user,
/// a transaction); anything else is `BAD_USER_INPUT` on `field`.
pub fn uuid_of<T: OutputType>(id: &str, field: &'static str) -> Result<Uuid, AppError> {
    let type_name = T::type_name();
    let key = key_of(id, &type_name, field)?;
    Uuid::parse_str(&key)
        .map_err(|_| AppError::bad_field(field, format!("`{}` is not a valid {type_name} id", shorten(id))))
}

/// At most 64 characters of an id, for an error message (a client may send anything).
fn shorten(id: &str) -> String {
    let mut short: String = id.chars().take(64).collect();
    if short.len() < id.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_base64_of_type_and_key_and_decodes_back() {
        let id = GlobalId::encode("Security", "FX:EURUSD");
        assert_eq!(id.as_str(), "U2VjdXJpdHk6Rlg6RVVSVVNE");
        let decoded = GlobalId::decode(&id, "id").unwrap();
        assert_eq!(decoded, GlobalId { type_name: "Security".into(), key: "FX:EURUSD".into() });
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in ["", "not base64!", "0190a0b4-7c1e-7000-8000-000000000000", "Tm9Db2xvbg==", "OmtleQ==", "VHlwZTo="] {
            let err = GlobalId::decode(bad, "id").unwrap_err();
            assert!(matches!(err, AppError::BadUserInput { field: Some("id"), .. }), "{bad}: {err:?}");
        }
        // Not UTF-8.
        assert!(GlobalId::decode(&STANDARD.encode([0xff, 0xfe, b':', b'x']), "id").is_err());
    }

    #[test]
    fn a_bare_key_or_the_global_id_of_the_type_is_accepted() {
        let uuid = "0190a0b4-7c1e-7000-8000-000000000000";
        assert_eq!(key_of(uuid, "Transaction", "id").unwrap(), uuid);
        let global = GlobalId::encode("Transaction", uuid);
        assert_eq!(key_of(&global, "Transaction", "id").unwrap(), uuid);
        assert!(key_of(&GlobalId::encode("User", uuid), "Transaction", "id").is_err());
    }
}
