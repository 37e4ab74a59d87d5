//! A real ClickHouse server for the shipping tests and the shipping benchmark: Debian's
//! `clickhouse-server` started as our own process on 127.0.0.1, with a temporary data
//! directory, a generated config and free ports, and stopped at the end.
//!
//! `Server::start` says why it cannot start; the tests skip with `common::skip_or_fail` (a
//! failure under `CI=true`: `.ci/run` installs the package).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A server could not take its port: another answers there.
const PORT_TAKEN: &str = "another server answers on a port this one was given";

/// The password of the extra user `shipper` the generated config declares.
pub const SHIPPER_PASSWORD: &str = "s3cret";

/// A running (or stopped) server and its data directory.
pub struct Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
    binary: PathBuf,
    /// The HTTP port.
    pub http_port: u16,
}

fn find_binary() -> Option<PathBuf> {
    let candidates = ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| {
            let out = Command::new("sh")
                .args(["-c", "command -v clickhouse-server"])
                .output()
                .ok()?;
            let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            (!path.is_empty()).then(|| PathBuf::from(path))
        })
}

impl Server {
    /// Starts a server on free ports and waits until `SELECT 1` answers.
    pub fn start() -> Result<Server, String> {
        Server::start_with("")
    }

    /// [`start`](Server::start) with `extra` added to the server's config (for example its
    /// `<compression>` setting).
    pub fn start_with(extra: &str) -> Result<Server, String> {
        let mut tries = 0;
        loop {
            // Both ports chosen while the other is held, so they differ.
            let http = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let tcp = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let port =
                |l: &TcpListener| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string());
            let (http_port, tcp_port) = (port(&http)?, port(&tcp)?);
            drop((http, tcp));
            match Server::start_on(http_port, tcp_port, extra) {
                Err(e) if e == PORT_TAKEN && tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    /// Starts `shards` servers, each one shard of the cluster `cluster` (one replica per
    /// shard, no ZooKeeper), which every server's `remote_servers` declares.
    pub fn start_cluster(cluster: &str, shards: usize) -> Result<Vec<Server>, String> {
        let mut tries = 0;
        loop {
            match Server::try_cluster(cluster, shards) {
                Err(e) if e == PORT_TAKEN && tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    fn try_cluster(cluster: &str, shards: usize) -> Result<Vec<Server>, String> {
        // Every port is chosen while the others are still held, so none is chosen twice.
        let held: Vec<TcpListener> = (0..shards * 2)
            .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let port = |l: &TcpListener| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string());
        let ports: Vec<(u16, u16)> = held
            .chunks(2)
            .map(|p| Ok((port(&p[0])?, port(&p[1])?)))
            .collect::<Result<_, String>>()?;
        drop(held);
        let mut xml = format!("<remote_servers><{cluster}>");
        for (_, tcp) in &ports {
            xml.push_str(&format!(
                "<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
            ));
        }
        xml.push_str(&format!("</{cluster}></remote_servers>"));
        ports
            .into_iter()
            .map(|(http, tcp)| Server::start_on(http, tcp, &xml))
            .collect()
    }

    fn start_on(http_port: u16, tcp_port: u16, extra: &str) -> Result<Server, String> {
        let binary = find_binary()
            .ok_or("no clickhouse-server binary (apt-get install clickhouse-server)")?;
        // On tmpfs when there is one: a server that took thousands of inserts leaves tens of
        // thousands of part files, and deleting them from a disk with `discard` takes seconds.
        let dir = tempfile::Builder::new()
            .prefix("logstore-clickhouse-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .map_err(|e| e.to_string())?;
        write_config(dir.path(), http_port, tcp_port, extra).map_err(|e| e.to_string())?;
        let mut server = Server {
            child: None,
            dir,
            binary,
            http_port,
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> Result<(), String> {
        let log =
            std::fs::File::create(self.dir.path().join("stdout.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg(format!(
                "--config-file={}",
                self.dir.path().join("config.xml").display()
            ))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.ping() {
                // The answer may come from another test's server on a port ours could not
                // bind (18.16 logs a failed listen and keeps running): ours knows its directory.
                return match self.query_opt(
                    "SELECT substitution FROM system.macros WHERE macro = 'logstore_test'",
                ) {
                    Some(dir) if dir.trim() == self.dir.path().display().to_string() => Ok(()),
                    _ => {
                        self.kill();
                        Err(PORT_TAKEN.to_owned())
                    }
                };
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!(
                    "clickhouse-server exited with {status}: {}",
                    self.log_tail()
                ));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "clickhouse-server did not answer within 60 s: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn query_opt(&self, sql: &str) -> Option<String> {
        logstore::ship::ClickHouse::new(&self.url())
            .and_then(|c| c.execute(sql))
            .ok()
    }

    fn ping(&self) -> bool {
        logstore::ship::ClickHouse::new(&self.url())
            .and_then(|c| c.execute("SELECT 1"))
            .is_ok_and(|s| s.trim() == "1")
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["stdout.log", "data/err.log"] {
            let t = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let start = t.len().saturating_sub(2000);
            text.push_str(t.get(start..).unwrap_or(""));
        }
        text
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The URL with the `shipper` user's credentials.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}", self.http_port)
    }

    /// Runs `sql` as the default user; panics with the server's message on failure.
    pub fn query(&self, sql: &str) -> String {
        logstore::ship::ClickHouse::new(&self.url())
            .and_then(|c| c.execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Rows stored in `logstore.logs` before any merge (`count()` without `FINAL`: a row sent
    /// twice counts twice).
    pub fn raw_rows(&self) -> u64 {
        let n = self.query("SELECT count() FROM logstore.logs");
        n.trim()
            .parse()
            .unwrap_or_else(|e| panic!("count() gave {n:?}: {e}"))
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (a crash) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id().cast_signed()), Signal::SIGKILL);
            let _ = c.wait();
        }
    }

    /// Stops the server with SIGTERM (a clean shutdown), SIGKILL after 20 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id().cast_signed()), Signal::SIGTERM);
            let started = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(20) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts the stopped (or killed) server again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch().expect("restart clickhouse-server");
    }

    /// Starts it again after [`kill`](Self::kill) or [`stop`](Self::stop).
    pub fn start_again(&mut self) {
        self.launch().expect("start clickhouse-server again");
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_config(dir: &Path, http_port: u16, tcp_port: u16, extra: &str) -> std::io::Result<()> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let d = data.display();
    let own = dir.display();
    std::fs::write(
        dir.join("config.xml"),
        format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/err.log</errorlog><size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{d}/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <keep_alive_timeout>3</keep_alive_timeout>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <macros><logstore_test>{own}</logstore_test></macros>
  {extra}
</yandex>
"#
        ),
    )?;
    std::fs::write(
        dir.join("users.xml"),
        format!(
            r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <shipper><password>{SHIPPER_PASSWORD}</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></shipper>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#
        ),
    )
}
