//! CPU time of this process and of its main thread, from procfs (Linux).

/// CPU time this process has used (user and system, every thread), in seconds: a cost that
/// other load on a shared machine moves less than it moves throughput.
pub fn cpu_secs() -> f64 {
    cpu_secs_in("/proc/self/stat")
}

/// CPU time the process's main thread has used, in seconds (where a benchmark's load
/// generator runs, so that the rest is the server's).
pub fn main_thread_cpu_secs() -> f64 {
    cpu_secs_in(&format!("/proc/self/task/{}/stat", std::process::id()))
}

fn cpu_secs_in(stat: &str) -> f64 {
    // After the command's `(name)`, utime and stime are the 12th and 13th fields, in clock
    // ticks (100 a second on Linux).
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_name.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    match (fields.get(11), fields.get(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}
