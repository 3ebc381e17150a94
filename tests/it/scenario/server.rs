//! The server as its own process (the real binary), so a test can kill it with SIGKILL. It starts
//! with the tests' first admin and keeps both its keys in the test's directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ServerProcess {
    child: Child,
    pub base: String,
}

impl ServerProcess {
    /// Starts `autosalon serve` on `database_url`, its signing key and log in `dir`, and waits
    /// until it answers.
    pub async fn start(database_url: &str, dir: &Path, name: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let child = Command::new(env!("CARGO_BIN_EXE_autosalon"))
            .arg("serve")
            .env("AUTOSALON_DATABASE_URL", database_url)
            .env("AUTOSALON_LISTEN", format!("127.0.0.1:{port}"))
            .env("AUTOSALON_SIGNING_KEY_FILE", dir.join("signing.key"))
            .env("AUTOSALON_TOKEN_KEY_FILE", dir.join("token.key"))
            .env(
                "AUTOSALON_BOOTSTRAP_ADMIN",
                format!(
                    "{}:{}",
                    crate::helpers::ADMIN_EMAIL,
                    crate::helpers::ADMIN_PASSWORD
                ),
            )
            .env("AUTOSALON_GRAPHIQL", "false")
            .env("AUTOSALON_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the autosalon binary starts");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready(Duration::from_secs(60)).await;
        server
    }

    async fn wait_ready(&self, within: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            let ready = client
                .get(format!("{}/readyz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "{} not ready in time", self.base);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client that sends the first admin's access token, signed in on this server. The token
    /// stays good on the servers started after it on the same database and key files.
    pub async fn admin_client(&self) -> reqwest::Client {
        let addr = self
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("a socket address");
        let token = crate::helpers::login(
            &reqwest::Client::new(),
            addr,
            crate::helpers::ADMIN_EMAIL,
            crate::helpers::ADMIN_PASSWORD,
        )
        .await
        .expect("the first admin signs in");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// SIGKILL: no shutdown hook runs, in-flight requests and transactions just stop.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
