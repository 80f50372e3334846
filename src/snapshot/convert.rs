// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! From a mapped video frame of any supported format to [`YcbcrPlanes`].
//!
//! Three ways in, cheapest first:
//! - YUV and gray frames already in JPEG's colours (full-range BT.601), or limited-range BT.601,
//!   are plane copies; limited range is stretched to full range during the copy.
//! - Packed RGB frames go through libjpeg-turbo's own RGB to YCbCr conversion.
//! - Anything that also needs scaling, or another YUV matrix (BT.709, BT.2020, ...), goes through
//!   GStreamer's `VideoConverter` to full-range BT.601 I420 first.

use std::cell::RefCell;

use gst_video::prelude::*;
use gst_video::{
    VideoColorMatrix, VideoColorRange, VideoColorimetry, VideoConverter, VideoFormat,
    VideoFrameRef, VideoInfo,
};
use turbojpeg::PixelFormat;

use super::SnapshotError;
use super::encode::JpegEncoder;
use super::planes::{ChromaSampling, YcbcrPlanes};

/// The formats a snapshot can be made from, in the order the module documentation lists them.
pub const SUPPORTED_FORMATS: [VideoFormat; 17] = [
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
    VideoFormat::I420,
    VideoFormat::Yv12,
    VideoFormat::Nv12,
    VideoFormat::Nv21,
    VideoFormat::Yuy2,
    VideoFormat::Uyvy,
    VideoFormat::Gray8,
];

/// Cb and Cr of every gray.
const NEUTRAL_CHROMA: u8 = 128;

/// libjpeg-turbo's name for a packed RGB layout; alpha is ignored, as JPEG has none.
fn turbojpeg_rgb_layout(format: VideoFormat) -> Option<PixelFormat> {
    Some(match format {
        VideoFormat::Rgb => PixelFormat::RGB,
        VideoFormat::Bgr => PixelFormat::BGR,
        VideoFormat::Rgbx | VideoFormat::Rgba => PixelFormat::RGBX,
        VideoFormat::Bgrx | VideoFormat::Bgra => PixelFormat::BGRX,
        VideoFormat::Xrgb | VideoFormat::Argb => PixelFormat::XRGB,
        VideoFormat::Xbgr | VideoFormat::Abgr => PixelFormat::XBGR,
        _ => return None,
    })
}

/// The frame in JPEG's planes at `size` (width, height), which is the frame's own size unless
/// the caller scales it down.
pub(crate) fn to_planes(
    frame: &VideoFrameRef<&gst::BufferRef>,
    size: (u32, u32),
    encoder: &mut JpegEncoder,
) -> Result<YcbcrPlanes, SnapshotError> {
    let info = frame.info();
    if !SUPPORTED_FORMATS.contains(&info.format()) {
        return Err(SnapshotError::UnsupportedFormat(info.format()));
    }
    if is_plane_copy(info, size) {
        return copy_yuv(frame);
    }

    let layout = turbojpeg_rgb_layout(info.format());
    match layout {
        Some(layout) if size == (info.width(), info.height()) => {
            let mut planes =
                YcbcrPlanes::recycled_or_new(info.width(), info.height(), ChromaSampling::Quarter)?;
            let pitch = positive_stride(frame, 0)?;
            encoder.rgb_to_planes(plane_data(frame, 0)?, pitch, layout, &mut planes)?;
            Ok(planes)
        }
        _ => {
            let (buffer, converted_info) = convert_with_gstreamer(frame, size)?;
            let converted = VideoFrameRef::from_buffer_ref_readable(&buffer, &converted_info)
                .map_err(|err| SnapshotError::Conversion(err.to_string()))?;
            copy_yuv(&converted)
        }
    }
}

/// True when a frame of `info` becomes a snapshot of `size` by a plane copy alone (see
/// [`copy_yuv`]): YUV or gray in BT.601, not scaled. Such a copy is cheap enough for the
/// streaming thread.
pub(crate) fn is_plane_copy(info: &VideoInfo, size: (u32, u32)) -> bool {
    SUPPORTED_FORMATS.contains(&info.format())
        && turbojpeg_rgb_layout(info.format()).is_none()
        && size == (info.width(), info.height())
        && !needs_matrix_conversion(info)
}

/// True for colour YUV whose matrix is not JPEG's BT.601: a stretch per channel cannot fix that,
/// as every output channel depends on all three inputs.
// FIXME: GStreamer's generic path takes about 5 ms for a 1080p BT.709 frame, as long as the
// encode itself; a fixed-point matrix fused into the plane copy would take well under 1 ms.
fn needs_matrix_conversion(info: &VideoInfo) -> bool {
    let format_info = info.format_info();
    format_info.is_yuv()
        && !format_info.is_gray()
        && !matches!(
            info.colorimetry().matrix(),
            VideoColorMatrix::Bt601 | VideoColorMatrix::Unknown
        )
}

/// Copies a YUV or gray frame whose matrix is BT.601 into planes, stretching limited range.
pub(crate) fn copy_yuv(
    frame: &VideoFrameRef<&gst::BufferRef>,
) -> Result<YcbcrPlanes, SnapshotError> {
    let info = frame.info();
    let format_info = info.format_info();
    let sampling = if format_info.n_components() >= 3 && format_info.h_sub()[1] == 0 {
        ChromaSampling::HalfWidth
    } else {
        ChromaSampling::Quarter
    };
    let mut planes = YcbcrPlanes::recycled_or_new(info.width(), info.height(), sampling)?;

    // Gray frames get neutral chroma, so that boxes keep the colour of their type.
    if format_info.n_components() < 3 {
        let [_, blue, red] = planes.planes_mut();
        blue.fill(NEUTRAL_CHROMA);
        red.fill(NEUTRAL_CHROMA);
    }

    let stretches = RangeStretch::for_frame(info);
    for component in 0..format_info.n_components().min(3) {
        let index = component as usize;
        let stretch = stretches.map(|stretches| stretches[index.min(1)]);
        let (dst_stride, _) = planes.plane_size(index);
        let source = ComponentSource::new(frame, component)?;
        source.copy_into(planes.planes_mut()[index], dst_stride, stretch)?;
    }
    // The padding is filled once, after drawing (see `draw_and_compress`).
    Ok(planes)
}

/// The stretch from limited to full range of one channel, `out = (in - offset) * gain + base`,
/// in 16-bit fixed point so that the copy loop compiles to SIMD instructions.
#[derive(Debug, Clone, Copy)]
struct RangeStretch {
    /// Inputs are first clamped to the nominal range, `low..=high`: nothing outside it is
    /// meaningful, and the bound keeps every product inside `i16`.
    low: i16,
    high: i16,
    offset: i16,
    gain: i16,
    base: i16,
}

/// Fraction bits of [`RangeStretch::gain`]; 7 bits keep the error under half a level.
const GAIN_SHIFT: u32 = 7;

impl RangeStretch {
    /// Luma first, then chroma; None for a full-range frame, or one that says nothing about
    /// its range, which JPEG reads as full.
    fn for_frame(info: &VideoInfo) -> Option<[RangeStretch; 2]> {
        let range = info.colorimetry().range();
        if range != VideoColorRange::Range16_235 {
            return None;
        }
        let format_info = info.format_info();
        let (offset, scale) = format_info.range_offsets(range);
        let (full_offset, full_scale) = format_info.range_offsets(VideoColorRange::Range0_255);

        let gain = |channel: usize| f64::from(full_scale[channel]) / f64::from(scale[channel]);

        // Luma spans offset..offset + scale; chroma is centred on its offset.
        let luma = RangeStretch::new(
            (offset[0], offset[0] + scale[0]),
            offset[0],
            gain(0),
            full_offset[0],
        );
        let luma = luma?;
        // Gray formats have no chroma, and GStreamer's offsets for it are not meaningful.
        if format_info.n_components() < 3 {
            return Some([luma, luma]);
        }
        let half_chroma = scale[1] / 2;
        let chroma = RangeStretch::new(
            (offset[1] - half_chroma, offset[1] + half_chroma),
            offset[1],
            gain(1),
            full_offset[1],
        );
        Some([luma, chroma?])
    }

    /// None when a value does not fit `i16` or the largest product would overflow it; no 8-bit
    /// format comes near.
    fn new((low, high): (i32, i32), offset: i32, gain: f64, base: i32) -> Option<Self> {
        let gain = (gain * f64::from(1 << GAIN_SHIFT)).round();
        let reach = (high - offset).max(offset - low);
        let largest = gain * f64::from(reach) + f64::from(1 << (GAIN_SHIFT - 1));
        if !(0.0..f64::from(i16::MAX)).contains(&largest) {
            return None;
        }
        Some(RangeStretch {
            low: i16::try_from(low).ok()?,
            high: i16::try_from(high).ok()?,
            offset: i16::try_from(offset).ok()?,
            gain: gain as i16,
            base: i16::try_from(base).ok()?,
        })
    }

    fn apply(self, sample: u8) -> u8 {
        let centred = i16::from(sample).clamp(self.low, self.high) - self.offset;
        let scaled = (centred * self.gain + (1 << (GAIN_SHIFT - 1))) >> GAIN_SHIFT;
        (scaled + self.base).clamp(0, 255) as u8
    }
}

/// One component of a mapped frame: where its samples are and how far apart.
struct ComponentSource<'a> {
    data: &'a [u8],
    stride: usize,
    pixel_stride: usize,
    width: usize,
    height: usize,
}

impl<'a> ComponentSource<'a> {
    fn new(
        frame: &'a VideoFrameRef<&gst::BufferRef>,
        component: u32,
    ) -> Result<Self, SnapshotError> {
        let info = frame.info();
        let plane = info.comp_plane(component as u8);
        let offset = info.comp_poffset(component as u8) as usize;
        let data = plane_data(frame, plane)?.get(offset..).unwrap_or_default();
        let pixel_stride = usize::try_from(frame.comp_pstride(component)).unwrap_or(0);

        let source = ComponentSource {
            data,
            stride: positive_stride(frame, plane)?,
            pixel_stride,
            width: frame.comp_width(component) as usize,
            height: frame.comp_height(component) as usize,
        };
        let row_bytes = (source.width.saturating_sub(1))
            .saturating_mul(pixel_stride)
            .saturating_add(1);
        let needed = (source.stride)
            .saturating_mul(source.height.saturating_sub(1))
            .saturating_add(row_bytes);
        if pixel_stride == 0 || source.stride < row_bytes || source.data.len() < needed {
            return Err(SnapshotError::InvalidFrame(format!(
                "plane {plane} holds {} bytes, fewer than its {}x{} samples need",
                source.data.len(),
                source.width,
                source.height
            )));
        }
        Ok(source)
    }

    /// Copies the samples into a packed plane with rows of `dst_stride` bytes, through
    /// `stretch` when one is given.
    fn copy_into(
        &self,
        dst: &mut [u8],
        dst_stride: usize,
        stretch: Option<RangeStretch>,
    ) -> Result<(), SnapshotError> {
        if dst_stride < self.width || dst.len() < dst_stride.saturating_mul(self.height) {
            return Err(SnapshotError::InvalidFrame(
                "the frame's planes are larger than its size says".into(),
            ));
        }
        // Both bounds were checked: every source row holds `width` samples, every destination
        // row `width` bytes.
        let rows = self.data.chunks(self.stride).take(self.height);
        for (src_row, dst_row) in rows.zip(dst.chunks_exact_mut(dst_stride)) {
            let dst_row = &mut dst_row[..self.width];
            match (self.pixel_stride, stretch) {
                (1, None) => dst_row.copy_from_slice(&src_row[..self.width]),
                (1, Some(stretch)) => {
                    for (out, sample) in dst_row.iter_mut().zip(src_row) {
                        *out = stretch.apply(*sample);
                    }
                }
                (step, stretch) => {
                    for (out, samples) in dst_row.iter_mut().zip(src_row.chunks(step)) {
                        let sample = samples[0];
                        *out = stretch.map_or(sample, |stretch| stretch.apply(sample));
                    }
                }
            }
        }
        Ok(())
    }
}

pub(super) fn plane_data<'a>(
    frame: &'a VideoFrameRef<&gst::BufferRef>,
    plane: u32,
) -> Result<&'a [u8], SnapshotError> {
    frame
        .plane_data(plane)
        .map_err(|err| SnapshotError::InvalidFrame(err.to_string()))
}

pub(super) fn positive_stride(
    frame: &VideoFrameRef<&gst::BufferRef>,
    plane: u32,
) -> Result<usize, SnapshotError> {
    frame
        .plane_stride()
        .get(plane as usize)
        .and_then(|stride| usize::try_from(*stride).ok())
        .filter(|stride| *stride > 0)
        .ok_or_else(|| SnapshotError::InvalidFrame(format!("plane {plane} has no usable stride")))
}

/// A converter and the buffer it writes into, kept for the next frame of the same shape.
struct CachedConversion {
    converter: VideoConverter,
    output: gst::Buffer,
}

thread_local! {
    /// The last conversion this thread set up: a camera's snapshots keep one size and format,
    /// and setting up a scaling converter costs more than a small conversion.
    static CONVERSION: RefCell<Option<CachedConversion>> = const { RefCell::new(None) };
}

/// Converts (and scales) `frame` into full-range BT.601 I420 of `size`.
fn convert_with_gstreamer(
    frame: &VideoFrameRef<&gst::BufferRef>,
    (width, height): (u32, u32),
) -> Result<(gst::Buffer, VideoInfo), SnapshotError> {
    let conversion_error = |err: gst::glib::BoolError| SnapshotError::Conversion(err.to_string());
    let in_info = frame.info();
    let source_colorimetry = in_info.colorimetry();
    let jpeg_colorimetry = VideoColorimetry::new(
        VideoColorRange::Range0_255,
        VideoColorMatrix::Bt601,
        source_colorimetry.transfer(),
        source_colorimetry.primaries(),
    );
    let out_info = VideoInfo::builder(VideoFormat::I420, width, height)
        .colorimetry(&jpeg_colorimetry)
        .fps(in_info.fps())
        .par(in_info.par())
        .interlace_mode(in_info.interlace_mode())
        .build()
        .map_err(conversion_error)?;

    CONVERSION.with(|cell| {
        let mut cached = cell.borrow_mut();
        let reusable = cached.as_ref().is_some_and(|cached| {
            cached.converter.in_info() == in_info && cached.converter.out_info() == &out_info
        });
        if !reusable {
            let converter =
                VideoConverter::new(in_info, &out_info, None).map_err(conversion_error)?;
            let output = gst::Buffer::with_size(out_info.size())
                .map_err(|err| SnapshotError::Conversion(err.to_string()))?;
            *cached = Some(CachedConversion { converter, output });
        }
        let Some(conversion) = cached.as_mut() else {
            return Err(SnapshotError::Conversion("no converter".into()));
        };

        // The caller dropped its reference to the last output, so this does not copy.
        let output = conversion.output.make_mut();
        let mut out_frame =
            VideoFrameRef::from_buffer_ref_writable(output, &out_info).map_err(conversion_error)?;
        conversion.converter.frame_ref(frame, &mut out_frame);
        drop(out_frame);
        Ok((conversion.output.clone(), out_info))
    })
}
