//! The one place that names the concrete backend, chosen at compile time by cargo feature.
//!
//! `flex` (the default) runs on the CPU with the `gemm` crate's matrix products; `ndarray` is the
//! older CPU backend, still selectable; `wgpu` runs on a GPU through Vulkan, Metal or DX12 and
//! wins when several features are on (then flex over ndarray).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[cfg(not(any(feature = "ndarray", feature = "flex", feature = "wgpu")))]
compile_error!(
    "iris-trainer needs a backend: build with `--features flex` (CPU, the default), \
     `--features ndarray` (the older CPU backend) or `--features wgpu` (GPU)"
);

/// The inference backend.
#[cfg(feature = "wgpu")]
pub type Backend = burn::backend::Wgpu;
/// The inference backend.
#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "flex"))))]
pub type Backend = burn::backend::NdArray;
/// The inference backend.
#[cfg(all(feature = "flex", not(feature = "wgpu")))]
pub type Backend = burn::backend::Flex;

/// The training backend: [`Backend`] with automatic differentiation.
pub type TrainBackend = burn::backend::Autodiff<Backend>;

/// The device type of [`Backend`].
pub type Device = burn::tensor::Device<Backend>;

/// Name of the compiled-in backend, as recorded in model metadata.
#[cfg(feature = "wgpu")]
pub const BACKEND_NAME: &str = "wgpu";
/// Name of the compiled-in backend, as recorded in model metadata.
#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "flex"))))]
pub const BACKEND_NAME: &str = "ndarray";
/// Name of the compiled-in backend, as recorded in model metadata.
#[cfg(all(feature = "flex", not(feature = "wgpu")))]
pub const BACKEND_NAME: &str = "flex";

/// What kind of processor runs the tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// The CPU, through a CPU backend (flex or ndarray).
    Cpu,
    /// A hardware GPU.
    Gpu,
    /// A GPU API implemented in software on the CPU (e.g. Mesa's lavapipe).
    SoftwareGpu,
}

/// The device in use, as printed at start-up and recorded in model metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// `flex`, `ndarray` or `wgpu`.
    pub backend: String,
    /// What runs the tensors.
    pub kind: DeviceKind,
    /// Human-readable device name (the adapter's name for wgpu).
    pub name: String,
    /// Graphics API and driver, for wgpu.
    pub driver: Option<String>,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            DeviceKind::Cpu => "CPU",
            DeviceKind::Gpu => "GPU",
            DeviceKind::SoftwareGpu => "software GPU on the CPU",
        };
        write!(f, "backend {}, device {} ({kind}", self.backend, self.name)?;
        if let Some(d) = &self.driver {
            write!(f, ", {d}")?;
        }
        f.write_str(")")
    }
}

/// The initialised device and its description.
#[derive(Debug, Clone)]
pub struct Selected {
    /// Pass this to tensor and module constructors.
    pub device: Device,
    /// What it is.
    pub info: DeviceInfo,
}

/// Initialises the compiled-in backend's default device.
///
/// `require_gpu` turns "no hardware GPU" into an error instead of a warning-worthy fallback.
#[cfg(all(any(feature = "ndarray", feature = "flex"), not(feature = "wgpu")))]
pub fn init(require_gpu: bool) -> Result<Selected> {
    if require_gpu {
        return Err(Error::Device(
            "a GPU is required (--require-gpu / IRIS_TRAINER_REQUIRE_GPU) but this binary was built \
             with the CPU backend only; rebuild with `--features wgpu`"
                .into(),
        ));
    }
    Ok(Selected {
        device: Default::default(),
        info: DeviceInfo {
            backend: BACKEND_NAME.into(),
            kind: DeviceKind::Cpu,
            name: "cpu".into(),
            driver: None,
        },
    })
}

/// wgpu found no adapter at all.
#[cfg(feature = "wgpu")]
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "no GPU adapter found: wgpu sees no Vulkan, Metal or DX12 device. On a GPU host install the \
     driver's Vulkan ICD; in a container run with `--gpus all` and \
     NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics; without a GPU use the CPU build \
     (default features)"
)]
struct NoGpuAdapter;

/// Initialises the compiled-in backend's default device.
///
/// `require_gpu` turns "no hardware GPU" into an error instead of a warning-worthy fallback.
#[cfg(feature = "wgpu")]
pub fn init(require_gpu: bool) -> Result<Selected> {
    use burn::backend::wgpu::{RuntimeOptions, WgpuDevice, graphics::AutoGraphicsApi, init_setup};
    use std::sync::OnceLock;

    // wgpu can be set up once per process; later calls reuse the first answer.
    static SETUP: OnceLock<std::result::Result<DeviceInfo, NoGpuAdapter>> = OnceLock::new();
    let info = SETUP.get_or_init(|| {
        let device = WgpuDevice::DefaultDevice;
        // Burn panics when no adapter exists; catch it (quietly) and explain instead.
        let setup = crate::error::catch_panic(|| {
            init_setup::<AutoGraphicsApi>(&device, RuntimeOptions::default())
        })
        .map_err(|_| NoGpuAdapter)?;
        let a = setup.adapter.get_info();
        let device_type = format!("{:?}", a.device_type);
        let kind = if device_type == "Cpu" {
            DeviceKind::SoftwareGpu
        } else {
            DeviceKind::Gpu
        };
        let driver = [
            format!("{:?}", a.backend),
            a.driver.clone(),
            a.driver_info.clone(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        Ok(DeviceInfo {
            backend: BACKEND_NAME.into(),
            kind,
            name: format!("{} [{device_type}]", a.name),
            driver: Some(driver),
        })
    });
    let info = info.clone().map_err(|e| Error::Device(e.to_string()))?;
    if require_gpu && info.kind != DeviceKind::Gpu {
        return Err(Error::Device(format!(
            "a GPU is required (--require-gpu / IRIS_TRAINER_REQUIRE_GPU) but the only adapter is \
             {}, which runs on the CPU; in a container run with `--gpus all` and \
             NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics",
            info.name
        )));
    }
    Ok(Selected {
        device: WgpuDevice::DefaultDevice,
        info,
    })
}
