//! The attack classes of the hardening review, replayed so they stay fixed: each submodule
//! takes one class (query bombs, stale sessions, readers that never read, credential stuffing,
//! connection floods, slow or missing dependencies, hostile input, retried writes) and does
//! what an attacker or a failing network did, then checks that finql refused it with a code,
//! in time, and kept serving everyone else.

/// Slowloris, silent and stalled clients, connection floods beyond the cap.
mod connection_floods;

/// Credential stuffing and sign-up floods: guesses per account, per address, in parallel,
/// across replicas, without Redis, and behind (forged) proxies.
mod credential_stuffing;

/// NUL bytes, over-long strings, crafted cursors, out-of-range times, duplicate symbols.
mod hostile_input;

/// Fragment bombs, huge documents, auth-mutation floods, the request deadline, stray methods.
mod query_bombs;

/// Idempotency keys: replays, mismatches, concurrent duplicates, expiry, header vs field.
mod retried_writes;

/// Sessions that outlive their token; sockets that outlive their reader; unreadable frames.
mod sessions;

/// API keys revoked under a live socket (one replica and two); tokens given on the handshake.
mod socket_credentials;

/// Upstreams and Redis that are slow, silent or gone: budgets, breakers, stale answers.
mod upstream_faults;
