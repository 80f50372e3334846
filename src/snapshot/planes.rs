// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! A picture the way a JPEG stores it: full-range BT.601 Y, Cb and Cr planes, laid out as
//! libjpeg-turbo reads them, and the rectangle fill that drawing is made of.

use turbojpeg::{libc, raw};

use super::SnapshotError;
use super::draw::Ycbcr;
use super::recycle::{Recycler, spare_copies};

/// Planes of finished snapshots, for the next ones of the same shape.
static SPARE_PLANES: Recycler<YcbcrPlanes> = Recycler::new(spare_copies);

/// How many luma samples share one chroma sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChromaSampling {
    /// 4:2:0, one chroma sample per 2x2 block.
    Quarter,
    /// 4:2:2, one chroma sample per 2x1 block, as YUY2 and UYVY carry it.
    HalfWidth,
}

impl ChromaSampling {
    /// Luma samples per chroma sample, horizontally and vertically.
    pub(crate) fn factors(self) -> (usize, usize) {
        match self {
            ChromaSampling::Quarter => (2, 2),
            ChromaSampling::HalfWidth => (2, 1),
        }
    }

    pub(crate) fn turbojpeg(self) -> libc::c_int {
        let sampling = match self {
            ChromaSampling::Quarter => raw::TJSAMP_TJSAMP_420,
            ChromaSampling::HalfWidth => raw::TJSAMP_TJSAMP_422,
        };
        sampling as libc::c_int
    }
}

/// A pixel rectangle, already inside the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl Rect {
    pub(crate) const fn new(x: usize, y: usize, width: usize, height: usize) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }
}

/// Three planes sized as libjpeg-turbo expects: the luma plane is padded to whole chroma blocks
/// (a 641x481 picture has a 642x482 luma plane), each chroma plane is that divided by the
/// sampling factors. Rows are packed: the stride is the plane width.
#[derive(Debug, Clone)]
pub(crate) struct YcbcrPlanes {
    width: u32,
    height: u32,
    sampling: ChromaSampling,
    planes: [Vec<u8>; 3],
    sizes: [(usize, usize); 3],
}

impl YcbcrPlanes {
    /// Planes for a `width` x `height` picture, luma black and chroma neutral.
    pub(crate) fn new(
        width: u32,
        height: u32,
        sampling: ChromaSampling,
    ) -> Result<Self, SnapshotError> {
        if width == 0 || height == 0 {
            return Err(SnapshotError::InvalidFrame(format!(
                "a {width}x{height} frame has no pixels"
            )));
        }
        let (across, down) = sampling.factors();
        let luma = (
            (width as usize).next_multiple_of(across),
            (height as usize).next_multiple_of(down),
        );
        let chroma = (luma.0 / across, luma.1 / down);

        Ok(YcbcrPlanes {
            width,
            height,
            sampling,
            planes: [
                vec![0; luma.0 * luma.1],
                vec![128; chroma.0 * chroma.1],
                vec![128; chroma.0 * chroma.1],
            ],
            sizes: [luma, chroma, chroma],
        })
    }

    /// Planes of this shape left over from an earlier snapshot, or new ones. Reused planes
    /// hold the last picture: whoever fills them writes every sample.
    pub(crate) fn recycled_or_new(
        width: u32,
        height: u32,
        sampling: ChromaSampling,
    ) -> Result<Self, SnapshotError> {
        match SPARE_PLANES.take(|planes| planes.has_shape(width, height, sampling)) {
            Some(planes) => Ok(planes),
            None => YcbcrPlanes::new(width, height, sampling),
        }
    }

    /// Gives these planes back for [`YcbcrPlanes::recycled_or_new`].
    pub(crate) fn recycle(self) {
        SPARE_PLANES.give(self);
    }

    fn has_shape(&self, width: u32, height: u32, sampling: ChromaSampling) -> bool {
        (self.width, self.height, self.sampling) == (width, height, sampling)
    }

    pub(crate) fn width(&self) -> u32 {
        self.width
    }

    pub(crate) fn height(&self) -> u32 {
        self.height
    }

    pub(crate) fn sampling(&self) -> ChromaSampling {
        self.sampling
    }

    /// Row lengths in bytes of Y, Cb, Cr.
    pub(crate) fn strides(&self) -> [usize; 3] {
        self.sizes.map(|(width, _)| width)
    }

    /// Width and height of plane `index` (0 = Y, 1 = Cb, 2 = Cr), padding included.
    pub(crate) fn plane_size(&self, index: usize) -> (usize, usize) {
        self.sizes[index]
    }

    pub(crate) fn planes(&self) -> [&[u8]; 3] {
        let [y, cb, cr] = &self.planes;
        [y, cb, cr]
    }

    pub(crate) fn planes_mut(&mut self) -> [&mut [u8]; 3] {
        let [y, cb, cr] = &mut self.planes;
        [y, cb, cr]
    }

    /// Repeats the last real column and row of luma into the padding, as libjpeg does for its
    /// own input: a hard edge there would ring into the visible pixels of the last block.
    pub(crate) fn pad_luma_edges(&mut self) {
        let (width, height) = (self.width as usize, self.height as usize);
        let (stride, padded_height) = self.sizes[0];
        let luma = &mut self.planes[0];

        if stride > width {
            for row in luma.chunks_exact_mut(stride).take(height) {
                let last = row[width - 1];
                row[width..].fill(last);
            }
        }
        if padded_height > height {
            let (visible, padding) = luma.split_at_mut(height * stride);
            let last_row = &visible[(height - 1) * stride..];
            for row in padding.chunks_exact_mut(stride) {
                row.copy_from_slice(last_row);
            }
        }
    }

    /// Paints `rect` (in luma pixels, inside the picture) with `colour`. Chroma samples the
    /// rectangle only partly covers take the colour too, so edges are at most one chroma sample
    /// wider in colour than in brightness.
    pub(crate) fn fill(&mut self, rect: Rect, colour: Ycbcr) {
        let right = (rect.x + rect.width).min(self.width as usize);
        let bottom = (rect.y + rect.height).min(self.height as usize);
        if rect.x >= right || rect.y >= bottom {
            return;
        }
        fill_plane(
            &mut self.planes[0],
            self.sizes[0].0,
            rect.x..right,
            rect.y..bottom,
            colour.y,
        );

        let (across, down) = self.sampling.factors();
        let columns = rect.x / across..right.div_ceil(across);
        let rows = rect.y / down..bottom.div_ceil(down);
        let stride = self.sizes[1].0;
        fill_plane(
            &mut self.planes[1],
            stride,
            columns.clone(),
            rows.clone(),
            colour.cb,
        );
        fill_plane(&mut self.planes[2], stride, columns, rows, colour.cr);
    }
}

fn fill_plane(
    plane: &mut [u8],
    stride: usize,
    columns: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
    value: u8,
) {
    for row in plane
        .chunks_exact_mut(stride)
        .skip(rows.start)
        .take(rows.len())
    {
        if let Some(span) = row.get_mut(columns.clone()) {
            span.fill(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The FFI calls trust these sizes, so they must be libjpeg-turbo's own.
    #[test]
    fn plane_sizes_are_the_ones_libjpeg_turbo_reads() {
        for sampling in [ChromaSampling::Quarter, ChromaSampling::HalfWidth] {
            for (width, height) in [(1, 1), (2, 2), (15, 17), (641, 481), (1920, 1080)] {
                let planes = YcbcrPlanes::new(width, height, sampling).unwrap();
                for index in 0..3 {
                    let (w, h) = (width as libc::c_int, height as libc::c_int);
                    let component = index as libc::c_int;
                    // SAFETY: both only compute a size from their arguments.
                    let expected = unsafe {
                        (
                            raw::tjPlaneWidth(component, w, sampling.turbojpeg()),
                            raw::tjPlaneHeight(component, h, sampling.turbojpeg()),
                        )
                    };
                    let (plane_width, plane_height) = planes.plane_size(index);
                    assert_eq!(
                        (plane_width as libc::c_int, plane_height as libc::c_int),
                        expected,
                        "{width}x{height} {sampling:?} plane {index}"
                    );
                    assert_eq!(planes.planes()[index].len(), plane_width * plane_height);
                }
            }
        }
    }

    #[test]
    fn fills_are_clipped_to_the_picture() {
        let mut planes = YcbcrPlanes::new(5, 3, ChromaSampling::Quarter).unwrap();
        let white = Ycbcr {
            y: 255,
            cb: 1,
            cr: 2,
        };
        planes.fill(Rect::new(3, 1, 100, 100), white);
        planes.fill(Rect::new(9, 9, 1, 1), white);

        let [luma, blue, _] = planes.planes();
        let lit: Vec<_> = luma.iter().map(|sample| *sample == 255).collect();
        // Rows of 6 (5 padded to 6): columns 3 and 4 of rows 1 and 2, never the padding.
        let expected: Vec<bool> = (0..6 * 4)
            .map(|i| (i % 6 == 3 || i % 6 == 4) && (i / 6 == 1 || i / 6 == 2))
            .collect();
        assert_eq!(lit, expected);
        assert_eq!(blue, &[128, 1, 1, 128, 1, 1]);
    }

    #[test]
    fn padding_repeats_the_last_column_and_row() {
        let mut planes = YcbcrPlanes::new(3, 3, ChromaSampling::Quarter).unwrap();
        let [luma, _, _] = planes.planes_mut();
        for (i, sample) in luma.iter_mut().enumerate() {
            *sample = i as u8;
        }
        planes.pad_luma_edges();
        assert_eq!(
            planes.planes()[0],
            &[0, 1, 2, 2, 4, 5, 6, 6, 8, 9, 10, 10, 8, 9, 10, 10]
        );
    }
}
