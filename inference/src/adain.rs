//! Fast-mode stylization with a model bundle on ONNX Runtime: the encoder gives a style's
//! statistics once, and the decoder renders any content with them (AdaIN inside the decoder graph).
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::RgbImage;
use ndarray::{Array1, Array4, ArrayD, Ix4};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::{Tensor, TensorRef};

use stylegram_onnx::u8s8;

use crate::InferenceError;
use crate::bundle::Manifest;
use crate::runtime::{self, Provider, SessionOptions};
use stylegram_imaging as images;

/// The sizes the graphs need: both sides multiples of this.
pub const SIZE_MULTIPLE: u32 = 8;

/// A style's AdaIN statistics at the encoder's last layer: per-channel mean and standard deviation,
/// each `[1, C, 1, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleStats {
    /// Per-channel mean.
    pub mean: Array4<f32>,
    /// Per-channel standard deviation (with the model's epsilon inside the root).
    pub std: Array4<f32>,
}

impl StyleStats {
    /// The weighted sum of several styles' statistics (weights normalised to sum to 1): AdaIN with
    /// these mixes the styles.
    pub fn mix(styles: &[(&StyleStats, f32)]) -> Option<StyleStats> {
        let total: f32 = styles.iter().map(|(_, w)| *w).sum();
        let (first, _) = styles.first()?;
        if !(total > 0.0 && total.is_finite()) {
            return None;
        }
        let mut mean = Array4::zeros(first.mean.raw_dim());
        let mut std = Array4::zeros(first.std.raw_dim());
        for (s, w) in styles {
            mean.scaled_add(*w / total, &s.mean);
            std.scaled_add(*w / total, &s.std);
        }
        Some(StyleStats { mean, std })
    }
}

/// A loaded, verified model bundle with one ONNX Runtime session per graph.
pub struct AdainModel {
    dir: PathBuf,
    manifest: Manifest,
    encoder: Mutex<Session>,
    decoder: Mutex<Session>,
    provider: Provider,
    int8_exact_everywhere: bool,
}

/// Whether every int8 weight tensor of an ONNX graph keeps x86's 16-bit pair sums exact (an
/// unreadable graph counts as not exact; ONNX Runtime will say what is wrong with it).
fn int8_exact_on_every_cpu(onnx: &[u8]) -> bool {
    stylegram_onnx::Model::from_bytes(onnx).is_ok_and(|model| {
        model.int8_weights().iter().all(|(_, dims, weights)| {
            let per_channel = weights.len() / dims.first().copied().unwrap_or(1).max(1);
            u8s8::saturation_free(weights, per_channel)
        })
    })
}

fn to_array4(a: ArrayD<f32>, what: &str) -> Result<Array4<f32>, InferenceError> {
    a.into_dimensionality::<Ix4>()
        .map_err(|e| InferenceError::Ort(format!("{what} is not 4-dimensional: {e}")))
}

impl AdainModel {
    /// Reads `dir/manifest.json`, checks every file's digest, and opens both graphs.
    pub fn load(dir: &Path, options: SessionOptions) -> Result<Self, InferenceError> {
        let manifest = Manifest::read_verified(dir)?;
        let quantized = manifest.architecture.get("quantization").is_some();
        let open = |graph: &str| -> Result<(Session, Provider, bool), InferenceError> {
            let path = manifest
                .graph_path(dir, graph)
                .expect("read_verified checked both graphs");
            let bytes = std::fs::read(&path).map_err(|source| InferenceError::Io {
                path: path.clone(),
                source,
            })?;
            let exact = !quantized || int8_exact_on_every_cpu(&bytes);
            let (session, provider) = runtime::create_session(&bytes, options)?;
            Ok((session, provider, exact))
        };
        let (encoder, provider, encoder_exact) = open("encoder")?;
        let (decoder, _, decoder_exact) = open("decoder")?;
        Ok(AdainModel {
            dir: dir.to_owned(),
            manifest,
            encoder: Mutex::new(encoder),
            decoder: Mutex::new(decoder),
            provider,
            int8_exact_everywhere: encoder_exact && decoder_exact,
        })
    }

    /// The bundle's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether the bundle's integer convolutions give the same result on every x86-64 CPU: true for
    /// float bundles and for int8 ones with 7-bit weights; false for 8-bit weights, which overflow
    /// without VNNI (see `stylegram_onnx::u8s8`).
    pub fn int8_exact_everywhere(&self) -> bool {
        self.int8_exact_everywhere
    }

    /// Whether this is an int8 bundle (from `stylegram models quantize`).
    pub fn is_quantized(&self) -> bool {
        self.manifest.architecture.get("quantization").is_some()
    }

    /// The bundle folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The execution provider the sessions got.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Runs the encoder on an image (padded by reflection to a multiple of 8): its relu4_1 features
    /// and their statistics.
    fn encode(&self, image: &RgbImage) -> Result<(Array4<f32>, StyleStats), InferenceError> {
        let padded = images::pad_reflect_to_multiple(image, SIZE_MULTIPLE);
        let input = images::to_nchw(&padded);
        let mut session = self.encoder.lock().expect("encoder lock");
        let out = session.run(ort::inputs!["image" => TensorRef::from_array_view(&input)?])?;
        let get = |name: &str| -> Result<Array4<f32>, InferenceError> {
            to_array4(out[name].try_extract_array::<f32>()?.to_owned(), name)
        };
        let stats = StyleStats {
            mean: get("mean")?,
            std: get("std")?,
        };
        Ok((get("features")?, stats))
    }

    /// The statistics of a style picture (compute once per style and cache them).
    pub fn style_stats(&self, style: &RgbImage) -> Result<StyleStats, InferenceError> {
        Ok(self.encode(style)?.1)
    }

    /// The decoder's raw output for encoder `features` (`[1, 3, 8h, 8w]`, not clamped).
    fn decode(
        &self,
        features: &Array4<f32>,
        style: &StyleStats,
        alpha: f32,
    ) -> Result<Array4<f32>, InferenceError> {
        let alpha = Array1::from_vec(vec![alpha.clamp(0.0, 1.0)]);
        let mut session = self.decoder.lock().expect("decoder lock");
        let out = session.run(ort::inputs![
            "features" => TensorRef::from_array_view(features)?,
            "style_mean" => TensorRef::from_array_view(&style.mean)?,
            "style_std" => TensorRef::from_array_view(&style.std)?,
            "alpha" => TensorRef::from_array_view(&alpha)?,
        ])?;
        to_array4(out["image"].try_extract_array::<f32>()?.to_owned(), "image")
    }

    /// The network alone: repaints `content` with the style statistics; `alpha` in [0, 1] is the
    /// strength. The output has the content's size (padding to a multiple of 8 is cropped away).
    /// [`crate::stylizer::Stylizer::stylize`] is the whole pipeline around it.
    /// On CUDA it runs [`Self::transfer_bound`].
    pub fn transfer(
        &self,
        content: &RgbImage,
        style: &StyleStats,
        alpha: f32,
    ) -> Result<RgbImage, InferenceError> {
        if self.provider == Provider::Cuda {
            return self.transfer_bound(content, style, alpha);
        }
        let (w, h) = content.dimensions();
        let (features, _) = self.encode(content)?;
        let image = self.decode(&features, style, alpha)?;
        Ok(images::crop_to(&images::from_nchw(&image), w, h))
    }

    /// [`Self::transfer`] with I/O binding: the encoder's features stay in the memory of the
    /// device that computed them and go straight into the decoder. On CUDA that saves copying them
    /// to the host and back (512 × H/8 × W/8 floats each way: 8 MiB at 512 px, 128 MiB at 2048 px);
    /// on the CPU it is the same computation through another API.
    pub fn transfer_bound(
        &self,
        content: &RgbImage,
        style: &StyleStats,
        alpha: f32,
    ) -> Result<RgbImage, InferenceError> {
        let (w, h) = content.dimensions();
        let input = images::to_nchw(&images::pad_reflect_to_multiple(content, SIZE_MULTIPLE));
        let (device, memory) = match self.provider {
            Provider::Cuda => (AllocationDevice::CUDA, MemoryType::Default),
            Provider::Cpu => (AllocationDevice::CPU, MemoryType::Default),
        };
        let on_device = MemoryInfo::new(device, 0, AllocatorType::Device, memory)?;
        let host = MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::CPUOutput,
        )?;
        let features = {
            let mut session = self.encoder.lock().expect("encoder lock");
            let mut binding = session.create_binding()?;
            binding.bind_input("image", &Tensor::from_array(input)?)?;
            binding.bind_output_to_device("features", &on_device)?;
            let mut outputs = session.run_binding(&binding)?;
            outputs
                .remove("features")
                .ok_or_else(|| InferenceError::Ort("the encoder gave no features".into()))?
        };
        let mut session = self.decoder.lock().expect("decoder lock");
        let mut binding = session.create_binding()?;
        binding.bind_input("features", &features)?;
        binding.bind_input("style_mean", &Tensor::from_array(style.mean.clone())?)?;
        binding.bind_input("style_std", &Tensor::from_array(style.std.clone())?)?;
        let alpha = Array1::from_vec(vec![alpha.clamp(0.0, 1.0)]);
        binding.bind_input("alpha", &Tensor::from_array(alpha)?)?;
        binding.bind_output_to_device("image", &host)?;
        let outputs = session.run_binding(&binding)?;
        let image = to_array4(
            outputs["image"].try_extract_array::<f32>()?.to_owned(),
            "image",
        )?;
        Ok(images::crop_to(&images::from_nchw(&image), w, h))
    }

    /// Runs `image` through both graphs with its own statistics and checks that the output has the
    /// padded image's shape and only finite values: the last check before a bundle is served.
    pub fn smoke_test(&self, image: &RgbImage) -> Result<(), InferenceError> {
        let (features, stats) = self.encode(image)?;
        let out = self.decode(&features, &stats, 1.0)?;
        let (w, h) = image.dimensions();
        let expected = [
            1,
            3,
            h.div_ceil(SIZE_MULTIPLE) as usize * SIZE_MULTIPLE as usize,
            w.div_ceil(SIZE_MULTIPLE) as usize * SIZE_MULTIPLE as usize,
        ];
        if out.shape() != expected {
            return Err(InferenceError::BadBundle {
                dir: self.dir.clone(),
                message: format!(
                    "smoke test: output shape {:?}, expected {expected:?}",
                    out.shape()
                ),
            });
        }
        if let Some(v) = out.iter().find(|v| !v.is_finite()) {
            return Err(InferenceError::BadBundle {
                dir: self.dir.clone(),
                message: format!("smoke test: the output holds {v}"),
            });
        }
        Ok(())
    }
}
