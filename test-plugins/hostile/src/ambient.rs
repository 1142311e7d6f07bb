//! Tries what a sandboxed plugin must not be able to do, and reports each attempt as a row:
//! `count` is 1 where the attempt got something, 0 where it was refused.

use super::out;
use adstream_sdk::{Batch, PluginError, log_info};

pub fn probe() -> Result<Batch, PluginError> {
    let file = std::fs::read("/etc/passwd");
    let dir = std::fs::read_dir("/");
    let write = std::fs::write("/tmp/adstream-hostile", b"x");
    let env: Vec<(String, String)> = std::env::vars().collect();
    let tcp = std::net::TcpStream::connect("127.0.0.1:6379");
    let dns = std::net::ToSocketAddrs::to_socket_addrs("localhost:80");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    log_info(&format!(
        "ambient probe: file {:?}, dir {:?}, write {:?}, {} env vars, tcp {:?}, dns {:?}, clock {:?}",
        file.as_ref().err(),
        dir.as_ref().err(),
        write.as_ref().err(),
        env.len(),
        tcp.as_ref().err(),
        dns.as_ref().err(),
        now
    ));
    let got = |ok: bool| i64::from(ok);
    out(
        &[
            "read_file",
            "list_dir",
            "write_file",
            "env_vars",
            "tcp_connect",
            "dns",
            "clock_seconds",
        ],
        &[
            got(file.is_ok()),
            got(dir.is_ok()),
            got(write.is_ok()),
            env.len() as i64,
            got(tcp.is_ok()),
            got(dns.is_ok()),
            now.as_secs() as i64,
        ],
    )
}
