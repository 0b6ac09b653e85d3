//! Fewer glibc malloc arenas for `serve`.
//!
//! glibc's allocator gives threads that allocate at the same time arenas of their own (up to 8 per
//! core), and each arena keeps the memory freed into it. For the agent that is a large part of
//! its memory: serving 100 ADS streams on 1,000 services × 10 endpoints it held 56 / 62–66 MiB
//! (SotW / delta) with glibc's default, and 43–45 / 44–51 MiB with two arenas, at about the same
//! change-to-ACK time (`bench/notes/agent-memory.md`, follow-up 3). glibc reads
//! `MALLOC_ARENA_MAX` only when the process starts, and setting the limit from inside (`mallopt`)
//! is an `unsafe` call, which the workspace forbids. So `serve` starts itself again, once, with
//! the variable set: `exec` of `/proc/self/exe` keeps the process (PID, arguments, open files,
//! the rest of the environment; Rust's `exec` resets the signal mask and `SIGPIPE`, as at any
//! start). An operator's own `MALLOC_ARENA_MAX` is left alone — set it when profiling, since a
//! profiler that does not follow `exec` would lose the agent. Other C libraries (musl) have no
//! arenas to limit.

/// glibc's variable.
const VARIABLE: &str = "MALLOC_ARENA_MAX";
const ARENAS: &str = "2";

/// Replaces this process with itself under `MALLOC_ARENA_MAX=2` (glibc only); returns only when
/// that is not needed (`Ok`) or not possible (`Err`: the warning to log; the agent goes on with
/// glibc's default).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit() -> Result<(), String> {
    restart().map_err(|e| {
        format!(
            "cannot restart with {VARIABLE}={ARENAS} ({e}); glibc's default arenas hold more memory"
        )
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn restart() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(VARIABLE).is_some() {
        return Ok(());
    }
    // Started through the dynamic loader (`ld-linux-x86-64.so.2 xds-agent serve`), this process's
    // executable is the loader: running it again with our arguments would not run the agent.
    let executable = std::fs::read_link("/proc/self/exe")?;
    if executable
        .file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with("ld-"))
    {
        return Err(std::io::Error::other("started through the dynamic loader"));
    }
    let mut args = std::env::args_os();
    // `/proc/self/exe` runs this very file, also when its path was replaced since it started.
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    Err(command.args(args).env(VARIABLE, ARENAS).exec())
}

/// Other C libraries have no per-thread arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit() -> Result<(), String> {
    Ok(())
}
