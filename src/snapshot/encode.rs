// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The two libjpeg-turbo calls the snapshots need: packed RGB to YCbCr planes, and YCbCr planes
//! to JPEG.
//!
//! The `turbojpeg` crate wraps only whole-image compression, so these two go through its raw
//! bindings. Every length is checked here, before the library reads or writes a byte.

use std::cell::RefCell;
use std::ffi::CStr;

use turbojpeg::{PixelFormat, libc, raw};

use super::SnapshotError;
use super::planes::{ChromaSampling, YcbcrPlanes};

/// Y, Cb and Cr planes of a `width` x `height` picture, rows `strides` bytes apart.
pub(crate) struct PlaneView<'a> {
    pub planes: [&'a [u8]; 3],
    pub strides: [usize; 3],
    pub width: u32,
    pub height: u32,
    pub sampling: ChromaSampling,
}

/// TurboJPEG's own choice of DCT: the fast one below quality 96 (jpegenc's default as well), the
/// accurate one above, where the difference would show.
const ENCODE_FLAGS: libc::c_int = 0;

/// A libjpeg-turbo compressor handle, one per thread (see [`with_encoder`]), with the output
/// memory it reuses from one snapshot to the next (see [`super::recycle`] for why).
pub(crate) struct JpegEncoder {
    handle: raw::tjhandle,
    /// Room for the worst-case JPEG of the last size. Only the bytes written are ever touched,
    /// so the untouched rest costs address space, not memory.
    output: Vec<u8>,
}

impl JpegEncoder {
    fn new() -> Result<Self, SnapshotError> {
        // SAFETY: tjInitCompress takes no input; a null result is its way to report failure.
        let handle = unsafe { raw::tjInitCompress() };
        if handle.is_null() {
            return Err(SnapshotError::Encoder(
                "libjpeg-turbo could not create a compressor".into(),
            ));
        }
        Ok(JpegEncoder {
            handle,
            output: Vec::new(),
        })
    }

    /// Converts packed RGB pixels (any byte order turbojpeg knows) into `planes` of the same
    /// size.
    pub(crate) fn rgb_to_planes(
        &mut self,
        pixels: &[u8],
        pitch: usize,
        format: PixelFormat,
        planes: &mut YcbcrPlanes,
    ) -> Result<(), SnapshotError> {
        let (width, height) = (planes.width() as usize, planes.height() as usize);
        let row_bytes = width.saturating_mul(format.size());
        let needed = pitch
            .saturating_mul(height.saturating_sub(1))
            .saturating_add(row_bytes);
        if pitch < row_bytes || pixels.len() < needed {
            return Err(SnapshotError::InvalidFrame(format!(
                "{} bytes with a stride of {pitch} cannot hold {width}x{height} {format:?} pixels",
                pixels.len()
            )));
        }

        let (width, height, pitch) = (c_int(width)?, c_int(height)?, c_int(pitch)?);
        let sampling = planes.sampling().turbojpeg();
        let mut strides = c_strides(planes)?;
        let mut pointers = planes.planes_mut().map(|plane| plane.as_mut_ptr());

        // SAFETY: the source holds `height` rows of `pitch` bytes (checked above) and every
        // destination plane is as large as libjpeg-turbo's plane size for this size and sampling
        // (YcbcrPlanes allocates them so); the pointers live as long as the call.
        let result = unsafe {
            raw::tjEncodeYUVPlanes(
                self.handle,
                pixels.as_ptr(),
                width,
                pitch,
                height,
                format as libc::c_int,
                pointers.as_mut_ptr(),
                strides.as_mut_ptr(),
                sampling,
                ENCODE_FLAGS,
            )
        };
        self.check(result)
    }

    /// Compresses `planes` into a JPEG at `quality` (1 to 100), then gives the planes back for
    /// the next snapshot.
    pub(crate) fn compress(
        &mut self,
        planes: YcbcrPlanes,
        quality: u8,
    ) -> Result<Vec<u8>, SnapshotError> {
        let view = PlaneView {
            planes: planes.planes(),
            strides: planes.strides(),
            width: planes.width(),
            height: planes.height(),
            sampling: planes.sampling(),
        };
        let jpeg = self.compress_view(view, quality);
        planes.recycle();
        jpeg
    }

    /// Compresses planes someone else laid out, after checking that each holds every row
    /// libjpeg-turbo will read.
    pub(crate) fn compress_view(
        &mut self,
        view: PlaneView<'_>,
        quality: u8,
    ) -> Result<Vec<u8>, SnapshotError> {
        let width = c_int(view.width as usize)?;
        let height = c_int(view.height as usize)?;
        let sampling = view.sampling.turbojpeg();
        let mut strides = [0; 3];
        for (index, (plane, stride)) in view.planes.iter().zip(view.strides).enumerate() {
            let component = index as libc::c_int;
            // SAFETY: both only compute a size from their arguments.
            let (plane_width, plane_height) = unsafe {
                (
                    raw::tjPlaneWidth(component, width, sampling),
                    raw::tjPlaneHeight(component, height, sampling),
                )
            };
            let (Ok(plane_width), Ok(plane_height)) =
                (usize::try_from(plane_width), usize::try_from(plane_height))
            else {
                return Err(SnapshotError::Encoder(format!(
                    "no plane size for {width}x{height}"
                )));
            };
            let needed = stride
                .saturating_mul(plane_height.saturating_sub(1))
                .saturating_add(plane_width);
            if stride < plane_width || plane.len() < needed {
                return Err(SnapshotError::InvalidFrame(format!(
                    "plane {index} holds {} bytes, fewer than its {plane_width}x{plane_height} \
                     samples need",
                    plane.len()
                )));
            }
            strides[index] = c_int(stride)?;
        }
        let mut pointers = view.planes.map(<[u8]>::as_ptr);

        // SAFETY: tjBufSize only computes a size; it returns -1 (all ones) for invalid input.
        let capacity = unsafe { raw::tjBufSize(width, height, sampling) };
        let capacity = usize::try_from(capacity)
            .ok()
            .filter(|capacity| *capacity != usize::MAX)
            .ok_or_else(|| SnapshotError::Encoder(format!("no JPEG size for {width}x{height}")))?;
        if self.output.capacity() < capacity {
            self.output = Vec::with_capacity(capacity);
        }
        let mut jpeg = self.output.as_mut_ptr();
        let mut jpeg_len = capacity as libc::c_ulong;

        // SAFETY: every plane holds the rows libjpeg-turbo reads (checked above). The output has
        // room for the worst case of this size, and NOREALLOC keeps the library inside it.
        let result = unsafe {
            raw::tjCompressFromYUVPlanes(
                self.handle,
                pointers.as_mut_ptr(),
                width,
                strides.as_ptr(),
                height,
                sampling,
                &mut jpeg,
                &mut jpeg_len,
                libc::c_int::from(quality),
                ENCODE_FLAGS | raw::TJFLAG_NOREALLOC as libc::c_int,
            )
        };
        self.check(result)?;
        let written = jpeg_len as usize;
        if jpeg != self.output.as_mut_ptr() || written > capacity {
            return Err(SnapshotError::Encoder(
                "libjpeg-turbo wrote outside the output buffer".into(),
            ));
        }

        // SAFETY: on success the library wrote `written` bytes at the start of the output.
        let bytes = unsafe { std::slice::from_raw_parts(jpeg, written) };
        Ok(bytes.to_vec())
    }

    fn check(&self, result: libc::c_int) -> Result<(), SnapshotError> {
        if result == 0 {
            return Ok(());
        }
        // SAFETY: the handle is valid; the library returns a static or per-handle C string.
        let message = unsafe { CStr::from_ptr(raw::tjGetErrorStr2(self.handle)) };
        Err(SnapshotError::Encoder(
            message.to_string_lossy().into_owned(),
        ))
    }
}

impl Drop for JpegEncoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from tjInitCompress and is destroyed once.
        unsafe {
            raw::tjDestroy(self.handle);
        }
    }
}

fn c_int(value: usize) -> Result<libc::c_int, SnapshotError> {
    libc::c_int::try_from(value)
        .map_err(|_| SnapshotError::InvalidFrame(format!("{value} does not fit libjpeg-turbo")))
}

fn c_strides(planes: &YcbcrPlanes) -> Result<[libc::c_int; 3], SnapshotError> {
    let [luma, blue, red] = planes.strides();
    Ok([c_int(luma)?, c_int(blue)?, c_int(red)?])
}

thread_local! {
    static ENCODER: RefCell<Option<JpegEncoder>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's encoder, created on first use: encoder threads keep theirs for
/// every snapshot they make.
pub(crate) fn with_encoder<T>(
    work: impl FnOnce(&mut JpegEncoder) -> Result<T, SnapshotError>,
) -> Result<T, SnapshotError> {
    ENCODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let encoder = match slot.as_mut() {
            Some(encoder) => encoder,
            None => slot.insert(JpegEncoder::new()?),
        };
        work(encoder)
    })
}
