//! Fewer glibc malloc arenas for `serve`.
//!
//! glibc's allocator gives threads that allocate at the same time arenas of their own (up to 8 per
//! core), and each arena keeps the memory freed into it. For the agent that is a large part of
//! its memory: serving 100 ADS streams on 1,000 services × 10 endpoints it held 56 / 62–66 MiB
//! (SotW / delta) with glibc's default, and 44 / 46–51 MiB with `MALLOC_ARENA_MAX=2`, at about
//! the same change-to-ACK time (`bench/notes/agent-memory.md`, follow-up 3). glibc reads that
//! variable only when the process starts, and setting the limit from inside (`mallopt`) is an
//! `unsafe` call, which the workspace forbids. So `serve` starts itself again, once, with the
//! variable set: `exec` keeps the process (same PID, arguments, environment otherwise). An
//! operator's own `MALLOC_ARENA_MAX` is left alone; other C libraries (musl) have no arenas.

/// glibc's variable, and the value `serve` runs with unless the environment sets one.
pub const VARIABLE: &str = "MALLOC_ARENA_MAX";
const ARENAS: &str = "2";

/// Replaces this process with itself under `MALLOC_ARENA_MAX=2` (glibc only); returns only when
/// that is not needed (`Ok`) or not possible (the error: the agent goes on with glibc's default).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(VARIABLE).is_some() {
        return Ok(());
    }
    let executable = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(executable);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    Err(command.args(args).env(VARIABLE, ARENAS).exec())
}

/// Other C libraries have no per-thread arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit() -> std::io::Result<()> {
    Ok(())
}
