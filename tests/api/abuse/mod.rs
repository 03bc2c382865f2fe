//! The attack classes of the hardening review, replayed so they stay fixed: each submodule
//! takes one class (query bombs, stale sessions, readers that never read, credential stuffing,
//! connection floods, slow or missing dependencies, hostile input, retried writes) and does
//! what an attacker or a failing network did, then checks that finql refused it with a code,
//! in time, and kept serving everyone else.
mod hostile_input;
mod retried_writes;
