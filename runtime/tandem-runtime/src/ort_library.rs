//! Finding the ONNX Runtime shared library (`ort` is built with `load-dynamic`).
//!
//! Order: the configured path ([`OrtOptions::library`](crate::OrtOptions::library)) →
//! `ORT_DYLIB_PATH` → an installed `onnxruntime` Python package (its `capi/` folder, located by
//! asking `python3`) → the fallback the embedding application offers
//! ([`OrtOptions::fallback_library`](crate::OrtOptions::fallback_library), e.g. the `tandem`
//! CLI's cache filled by `tandem data fetch onnxruntime`). A configured path or `ORT_DYLIB_PATH`
//! that does not exist is an error rather than a silent fall-through: the user asked for that
//! file. A fallback that does not exist is skipped: it is only an offer.

use crate::error::RuntimeError;
use std::path::{Path, PathBuf};

/// Where a library was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibrarySource {
    Config,
    EnvVar,
    PythonPackage,
    /// The library the embedding application offered last ([`Search::fallback`]).
    Fallback,
}

/// The inputs of the search, gathered from the process environment by [`Search::from_env`].
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub configured: Option<PathBuf>,
    pub env_var: Option<PathBuf>,
    /// The `onnxruntime` package folder of the Python on PATH, if there is one.
    pub python_package: Option<PathBuf>,
    /// A library the embedding application offers last, e.g. the `tandem` CLI's cache.
    pub fallback: Option<PathBuf>,
}

impl Search {
    /// Gather the search inputs: `configured`, `ORT_DYLIB_PATH`, `python3`, then `fallback`.
    pub fn from_env(configured: Option<&Path>, fallback: Option<&Path>) -> Self {
        Self {
            configured: configured.map(Path::to_path_buf),
            env_var: std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()).map(PathBuf::from),
            python_package: python_onnxruntime_dir(),
            fallback: fallback.map(Path::to_path_buf),
        }
    }

    /// Run the search.
    pub fn find(&self) -> Result<(PathBuf, LibrarySource), RuntimeError> {
        let mut searched = Vec::new();
        for (path, source) in
            [(&self.configured, LibrarySource::Config), (&self.env_var, LibrarySource::EnvVar)]
        {
            if let Some(path) = path {
                if path.is_file() {
                    return Ok((path.clone(), source));
                }
                let what =
                    if source == LibrarySource::Config { "the configured library" } else { "ORT_DYLIB_PATH" };
                return Err(RuntimeError::OrtLibraryLoad {
                    path: path.clone(),
                    message: format!("{what} does not exist or is not a file"),
                });
            }
        }
        searched.push("ORT_DYLIB_PATH (unset)".to_string());
        match &self.python_package {
            Some(dir) => {
                let capi = dir.join("capi");
                if let Some(lib) = library_in(&capi) {
                    return Ok((lib, LibrarySource::PythonPackage));
                }
                searched.push(capi.display().to_string());
            }
            None => searched.push("python3 -c 'import onnxruntime' (not installed)".into()),
        }
        match &self.fallback {
            Some(lib) if lib.is_file() => return Ok((lib.clone(), LibrarySource::Fallback)),
            Some(lib) => searched.push(format!("{} (fallback)", lib.display())),
            None => {}
        }
        Err(RuntimeError::OrtLibraryNotFound { searched })
    }
}

/// The newest-looking `libonnxruntime.so*` in `dir` (the versioned file, or the plain `.so`).
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    // Longest name first: `libonnxruntime.so.1.20.1` over `libonnxruntime.so`.
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.into_iter().next()
}

/// Ask `python3` where its `onnxruntime` package lives (`None` without python3 or the package).
fn python_onnxruntime_dir() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import os, onnxruntime; print(os.path.dirname(onnxruntime.__file__))"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.is_dir().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"not really a library").unwrap();
    }

    #[test]
    fn order_is_config_env_python_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("cfg/libonnxruntime.so");
        let env = tmp.path().join("env/libonnxruntime.so.1.20.0");
        let python = tmp.path().join("site/onnxruntime");
        let fallback = tmp.path().join("cache/onnxruntime-1.31.1/libonnxruntime.so.1.31.1");
        for p in [&config, &env, &python.join("capi/libonnxruntime.so.1.19.2"), &fallback] {
            touch(p);
        }
        let mut search = Search {
            configured: Some(config.clone()),
            env_var: Some(env.clone()),
            python_package: Some(python.clone()),
            fallback: Some(fallback.clone()),
        };
        assert_eq!(search.find().unwrap(), (config, LibrarySource::Config));
        search.configured = None;
        assert_eq!(search.find().unwrap(), (env, LibrarySource::EnvVar));
        search.env_var = None;
        assert_eq!(
            search.find().unwrap(),
            (python.join("capi/libonnxruntime.so.1.19.2"), LibrarySource::PythonPackage)
        );
        search.python_package = None;
        assert_eq!(search.find().unwrap(), (fallback, LibrarySource::Fallback));
    }

    #[test]
    fn a_python_package_without_the_library_falls_through_to_the_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let python = tmp.path().join("site/onnxruntime");
        std::fs::create_dir_all(python.join("capi")).unwrap();
        let fallback = tmp.path().join("lib/libonnxruntime.so");
        touch(&fallback);
        let search =
            Search { python_package: Some(python), fallback: Some(fallback.clone()), ..Search::default() };
        assert_eq!(search.find().unwrap(), (fallback, LibrarySource::Fallback));
    }

    #[test]
    fn nothing_found_names_what_was_searched_and_what_to_install() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("cache/libonnxruntime.so");
        let search = Search { fallback: Some(missing.clone()), ..Search::default() };
        let err = search.find().unwrap_err();
        assert!(matches!(err, RuntimeError::OrtLibraryNotFound { .. }));
        let text = err.to_string();
        assert!(
            text.contains("tandem data fetch onnxruntime") && text.contains("pip install onnxruntime"),
            "{text}"
        );
        assert!(text.contains(&format!("{} (fallback)", missing.display())), "{text}");
        assert!(Search::default().find().is_err(), "no fallback offered: nothing found");
    }

    #[test]
    fn a_configured_path_that_does_not_exist_is_an_error_not_a_fallthrough() {
        let tmp = tempfile::tempdir().unwrap();
        let fallback = tmp.path().join("libonnxruntime.so");
        touch(&fallback);
        for search in [
            Search {
                configured: Some(tmp.path().join("missing.so")),
                fallback: Some(fallback.clone()),
                ..Search::default()
            },
            Search {
                env_var: Some(tmp.path().join("missing.so")),
                fallback: Some(fallback.clone()),
                ..Search::default()
            },
        ] {
            assert!(matches!(search.find(), Err(RuntimeError::OrtLibraryLoad { .. })), "{search:?}");
        }
    }
}
