//! File descriptors: the limit every socket counts against.
//!
//! The review's flood of 1,100 connections took `/health` down with "too many open files": the
//! process ran at the usual soft limit of 1,024 descriptors though its hard limit allowed far
//! more. At start-up the soft limit is raised to the hard one (allowed without privileges), and
//! the connection cap is checked against what the process got: if `FINQL_MAX_CONNECTIONS`, the
//! probe reserve and the descriptors the rest of the process needs do not fit, the cap is
//! lowered (with a warning) so the reserve still has descriptors when the cap is reached.

/// Descriptors kept for everything but client sockets, on top of the database pool: the
/// listener, epoll and signal pipes, Redis connections (cache, pub/sub, lease), upstream
/// REST and WebSocket clients, the SQLite file and its journal, log output. About twenty in
/// practice; 64 leaves room for bursts (a reconnect overlapping the socket it replaces).
pub const DESCRIPTOR_MARGIN: u64 = 64;

/// Raises the soft limit on open files to the hard limit and returns the soft limit now in
/// force (`None` where there is no such limit or it cannot be read).
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is "unlimited" on either side.
    if limit.current.is_some() && limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!(from = ?limit.current, to = ?raised.current, "raised the open-files limit");
                limit = raised;
            }
            // macOS refuses an unlimited soft limit; the old one stays in force.
            Err(err) => tracing::warn!(
                err = %std::io::Error::from(err),
                soft = ?limit.current,
                hard = ?limit.maximum,
                "cannot raise the open-files limit"
            ),
        }
    }
    limit.current
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<u64> {
    None
}

/// The connection cap that fits in `open_files` descriptors with the reserve and `margin`
/// (the [`DESCRIPTOR_MARGIN`] plus the database pool) left over: `max` when it fits, else
/// lower, never below one.
pub fn fitting_cap(max: usize, reserve: usize, margin: u64, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else { return max };
    let needed = (max as u64).saturating_add(reserve as u64).saturating_add(margin);
    if needed <= open_files {
        return max;
    }
    let fits = open_files.saturating_sub(margin).saturating_sub(reserve as u64).max(1);
    let fits = usize::try_from(fits).unwrap_or(usize::MAX).min(max);
    tracing::warn!(
        max_connections = max,
        reserve,
        open_files,
        lowered_to = fits,
        "FINQL_MAX_CONNECTIONS plus FINQL_CONNECTION_RESERVE and {margin} descriptors for the rest of the \
         process exceed the open-files limit; serving at most {fits} connections (raise `ulimit -n`)"
    );
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_lowered_only_when_it_does_not_fit() {
        assert_eq!(fitting_cap(10_000, 32, 80, Some(1_048_576)), 10_000);
        assert_eq!(fitting_cap(10_000, 32, 80, None), 10_000);
        assert_eq!(fitting_cap(10_000, 32, 80, Some(1024)), 1024 - 80 - 32);
        assert_eq!(fitting_cap(10, 32, 80, Some(50)), 1, "never below one");
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let got = raise_open_files_limit();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if limit.maximum.is_some() {
            assert_eq!(got, limit.maximum);
        }
    }
}
