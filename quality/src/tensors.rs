//! Moving images between the shared image module (`RgbImage`) and tch tensors.
use image::RgbImage;
use ndarray::Array4;
use stylegram_imaging as images;
use tch::{Device, Kind, Tensor};

/// An image as a `[1, 3, H, W]` f32 tensor in [0, 1] on `device`.
pub fn from_image(image: &RgbImage, device: Device) -> Tensor {
    let (w, h) = image.dimensions();
    let array = images::to_nchw(image);
    Tensor::from_slice(
        array
            .as_slice()
            .expect("to_nchw returns a standard-layout array"),
    )
    .view([1, 3, i64::from(h), i64::from(w)])
    .to_device(device)
}

/// The first image of a `[N, 3, H, W]` tensor (values clamped to [0, 1]).
pub fn to_image(tensor: &Tensor) -> RgbImage {
    let (_, _, h, w) = tensor.size4().expect("image tensors are [N, 3, H, W]");
    let first = tensor
        .get(0)
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .clamp(0.0, 1.0)
        .contiguous();
    let values: Vec<f32> = first
        .flatten(0, -1)
        .try_into()
        .expect("a float tensor converts to Vec<f32>");
    let array = Array4::from_shape_vec((1, 3, h as usize, w as usize), values)
        .expect("shape from the tensor");
    images::from_nchw(&array)
}
