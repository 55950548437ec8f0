//! ONNX Runtime configuration: which library, which execution providers in which order, with which
//! options. Plain data, compiled with or without the `ort` feature, so every setting handed to ONNX
//! Runtime is unit-tested on machines without a GPU.

use std::path::{Path, PathBuf};

/// TensorRT execution provider options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRtOptions {
    pub device_id: u32,
    /// Build fp16 engines (`trt_fp16_enable`): about twice the throughput on Jetson.
    pub fp16: bool,
    /// Where built engines are cached (`trt_engine_cache_path`); `None` rebuilds every start.
    pub engine_cache_dir: Option<PathBuf>,
    /// Where the layer timing cache lives (`trt_timing_cache_path`); speeds up engine builds.
    pub timing_cache_dir: Option<PathBuf>,
    /// Builder workspace limit in bytes (`trt_max_workspace_size`).
    pub max_workspace_bytes: Option<u64>,
}

impl Default for TensorRtOptions {
    fn default() -> Self {
        Self {
            device_id: 0,
            fp16: true,
            engine_cache_dir: None,
            timing_cache_dir: None,
            max_workspace_bytes: None,
        }
    }
}

/// CUDA execution provider options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CudaOptions {
    pub device_id: u32,
}

/// An ONNX Runtime execution provider with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionProvider {
    TensorRt(TensorRtOptions),
    Cuda(CudaOptions),
    Cpu,
}

impl ExecutionProvider {
    /// ONNX Runtime's name for the provider (what `get_providers()` prints in Python).
    pub fn ort_name(&self) -> &'static str {
        match self {
            Self::TensorRt(_) => "TensorrtExecutionProvider",
            Self::Cuda(_) => "CUDAExecutionProvider",
            Self::Cpu => "CPUExecutionProvider",
        }
    }

    /// Short lower-case name for the command line.
    pub fn short_name(&self) -> &'static str {
        match self {
            Self::TensorRt(_) => "tensorrt",
            Self::Cuda(_) => "cuda",
            Self::Cpu => "cpu",
        }
    }

    /// The provider-option key/value pairs handed to ONNX Runtime, sorted by key.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let path = |p: &Path| p.display().to_string();
        let mut settings = match self {
            Self::TensorRt(o) => {
                let mut s = vec![("device_id", o.device_id.to_string()), ("trt_fp16_enable", flag(o.fp16))];
                if let Some(dir) = &o.engine_cache_dir {
                    s.push(("trt_engine_cache_enable", flag(true)));
                    s.push(("trt_engine_cache_path", path(dir)));
                }
                if let Some(dir) = &o.timing_cache_dir {
                    s.push(("trt_timing_cache_enable", flag(true)));
                    s.push(("trt_timing_cache_path", path(dir)));
                }
                if let Some(bytes) = o.max_workspace_bytes {
                    s.push(("trt_max_workspace_size", bytes.to_string()));
                }
                s
            }
            Self::Cuda(o) => vec![("device_id", o.device_id.to_string())],
            Self::Cpu => Vec::new(),
        };
        settings.sort();
        settings
    }
}

impl std::str::FromStr for ExecutionProvider {
    type Err = String;
    /// `tensorrt`, `cuda` or `cpu`, with default options.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tensorrt" | "trt" => Ok(Self::TensorRt(TensorRtOptions::default())),
            "cuda" => Ok(Self::Cuda(CudaOptions::default())),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!("unknown execution provider `{other}` (expected tensorrt, cuda or cpu)")),
        }
    }
}

/// How a [`Session`](crate::Session) uses ONNX Runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrtOptions {
    /// The library to load; `None` searches (see [`crate::ort_library`]).
    pub library: Option<PathBuf>,
    /// A library the embedding application offers last, after `ORT_DYLIB_PATH` and the
    /// `onnxruntime` Python package (e.g. the `tandem` CLI's cache); skipped when it does not exist.
    pub fallback_library: Option<PathBuf>,
    /// Execution providers in priority order. ONNX Runtime gives each node to the first provider
    /// that takes it; the CPU provider always comes last and takes the rest.
    pub providers: Vec<ExecutionProvider>,
    /// A provider that fails to register is an error instead of a silent fallback.
    pub strict: bool,
}

impl Default for OrtOptions {
    fn default() -> Self {
        Self::cpu()
    }
}

impl OrtOptions {
    /// The CPU provider only.
    pub fn cpu() -> Self {
        Self { library: None, fallback_library: None, providers: vec![ExecutionProvider::Cpu], strict: false }
    }

    /// The Jetson order: TensorRT (fp16, engine and timing caches under `cache_dir`) → CUDA → CPU.
    pub fn gpu(cache_dir: &Path) -> Self {
        let trt = TensorRtOptions {
            engine_cache_dir: Some(cache_dir.join("trt-engines")),
            timing_cache_dir: Some(cache_dir.join("trt-timing")),
            ..TensorRtOptions::default()
        };
        Self {
            library: None,
            fallback_library: None,
            providers: vec![
                ExecutionProvider::TensorRt(trt),
                ExecutionProvider::Cuda(CudaOptions::default()),
                ExecutionProvider::Cpu,
            ],
            strict: false,
        }
    }

    /// The providers to register, in order, checked: no duplicates, CPU last (appended when
    /// missing, since ONNX Runtime always falls back to it).
    pub fn provider_plan(&self) -> Result<Vec<ExecutionProvider>, String> {
        let mut plan = Vec::with_capacity(self.providers.len() + 1);
        for (i, p) in self.providers.iter().enumerate() {
            if plan.iter().any(|q: &ExecutionProvider| q.ort_name() == p.ort_name()) {
                return Err(format!("execution provider {} is listed twice", p.short_name()));
            }
            if *p == ExecutionProvider::Cpu && i + 1 != self.providers.len() {
                return Err("the cpu execution provider must come last: providers after it never run".into());
            }
            plan.push(p.clone());
        }
        if plan.last() != Some(&ExecutionProvider::Cpu) {
            plan.push(ExecutionProvider::Cpu);
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_order_is_tensorrt_then_cuda_then_cpu() {
        let plan = OrtOptions::gpu(Path::new("/var/cache/tandem")).provider_plan().unwrap();
        let names: Vec<_> = plan.iter().map(|p| p.ort_name()).collect();
        assert_eq!(names, ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]);
    }

    #[test]
    fn tensorrt_settings_carry_fp16_and_both_caches() {
        let plan = OrtOptions::gpu(Path::new("/var/cache/tandem")).provider_plan().unwrap();
        let settings = plan[0].settings();
        let get = |k: &str| settings.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("trt_fp16_enable"), Some("1"));
        assert_eq!(get("trt_engine_cache_enable"), Some("1"));
        assert_eq!(get("trt_engine_cache_path"), Some("/var/cache/tandem/trt-engines"));
        assert_eq!(get("trt_timing_cache_enable"), Some("1"));
        assert_eq!(get("trt_timing_cache_path"), Some("/var/cache/tandem/trt-timing"));
        assert_eq!(get("device_id"), Some("0"));
        assert_eq!(get("trt_max_workspace_size"), None);
    }

    #[test]
    fn fp16_off_and_no_cache_write_no_cache_keys() {
        let trt = ExecutionProvider::TensorRt(TensorRtOptions {
            fp16: false,
            max_workspace_bytes: Some(1 << 30),
            device_id: 1,
            ..TensorRtOptions::default()
        });
        assert_eq!(
            trt.settings(),
            vec![
                ("device_id", "1".to_string()),
                ("trt_fp16_enable", "0".to_string()),
                ("trt_max_workspace_size", "1073741824".to_string()),
            ]
        );
        assert!(ExecutionProvider::Cpu.settings().is_empty());
    }

    #[test]
    fn plan_appends_cpu_and_rejects_bad_orders() {
        let only_cuda = OrtOptions { providers: vec!["cuda".parse().unwrap()], ..OrtOptions::cpu() };
        assert_eq!(only_cuda.provider_plan().unwrap().last(), Some(&ExecutionProvider::Cpu));
        let cpu_first = OrtOptions {
            providers: vec![ExecutionProvider::Cpu, "tensorrt".parse().unwrap()],
            ..OrtOptions::cpu()
        };
        assert!(cpu_first.provider_plan().unwrap_err().contains("must come last"));
        let twice = OrtOptions { providers: vec!["cuda".parse().unwrap(); 2], ..OrtOptions::cpu() };
        assert!(twice.provider_plan().unwrap_err().contains("twice"));
        assert!("npu".parse::<ExecutionProvider>().is_err());
    }

    #[test]
    fn strict_is_off_by_default() {
        assert!(!OrtOptions::default().strict);
        assert!(!OrtOptions::gpu(Path::new("/c")).strict);
    }
}
