//! A small tmpfs mounted for one test, to make storage refuse writes (a full disk). Shared by the
//! store's tests and the application's storage test through `#[path]` (neither is a library the
//! other can depend on for tests).

/// A small tmpfs mounted for one test (root only; CI runs as root), unmounted when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `size` (e.g. `8m`), or says why not and gives `None` when not root.
    pub fn mount(size: &str) -> Option<Self> {
        let root = std::fs::read_to_string("/proc/self/status")
            .map(|status| {
                status.lines().any(|line| {
                    line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0")
                })
            })
            .unwrap_or(false);
        if !root {
            eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs at {}",
            dir.path().display()
        );
        Some(Self { dir })
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the file system until it refuses with ENOSPC; removing the file gives the space back.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..100_000 {
            if let Err(err) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
                assert_eq!(err.raw_os_error(), Some(28), "expected ENOSPC: {err}");
                return path;
            }
        }
        panic!("the tmpfs never filled up");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
