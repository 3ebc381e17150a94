//! Records the git commit the binary is built from (`autosalon --version`): `AUTOSALON_GIT_COMMIT`
//! when the build sets it (a container build without `.git`: hex digits only, up to 40), else
//! `git rev-parse`, else `unknown` (a source tarball, or no git).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=AUTOSALON_GIT_COMMIT");
    let given = std::env::var("AUTOSALON_GIT_COMMIT").ok().filter(|commit| {
        (1..=40).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit())
    });
    let commit = given
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AUTOSALON_GIT_COMMIT={commit}");
    // Rebuilt when HEAD moves: HEAD itself (a checkout), the branch it names (a commit), and the
    // packed refs. Only paths that exist: a missing one would rerun this on every build.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
