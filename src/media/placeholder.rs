//! Placeholder images, drawn and PNG-encoded here so the demo data needs no image files
//! and no network.

use std::io::Write;

use flate2::Compression;
use flate2::Crc;
use flate2::write::ZlibEncoder;

/// A `width` × `height` PNG in shades of `rgb` with a pattern chosen by `label_seed`, so
/// seeded products look different from each other. Sizes are clamped to 1..=4096.
pub fn placeholder_png(width: u32, height: u32, rgb: [u8; 3], label_seed: u64) -> Vec<u8> {
    let (width, height) = (width.clamp(1, 4096), height.clamp(1, 4096));
    let pattern = Pattern::from_seed(label_seed);
    // One filter byte (0: none) before each row of RGB pixels.
    let mut raw = Vec::with_capacity((height * (1 + 3 * width)) as usize);
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            let shade = pattern.shade(x, y, width, height);
            raw.extend(rgb.map(|c| scale(c, shade)));
        }
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    let compressed = encoder
        .write_all(&raw)
        .and_then(|()| encoder.finish())
        .expect("compressing into memory does not fail");

    let mut header = Vec::with_capacity(13);
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    // 8 bits per channel, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    header.extend([8, 2, 0, 0, 0]);

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    write_chunk(&mut png, b"IHDR", &header);
    write_chunk(&mut png, b"IDAT", &compressed);
    write_chunk(&mut png, b"IEND", &[]);
    png
}

fn write_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).expect("a chunk is under 4 GiB");
    png.extend(len.to_be_bytes());
    png.extend(kind);
    png.extend(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    png.extend(crc.sum().to_be_bytes());
}

/// Multiplies a channel by `shade` (0–255 meaning 0.0–1.0), then lifts it towards white
/// for light shades, so dark colours still show a pattern.
fn scale(channel: u8, shade: u8) -> u8 {
    let dark = u16::from(channel) * u16::from(shade) / 255;
    let lift = (255 - dark) * u16::from(shade.saturating_sub(200)) / 55;
    (dark + lift) as u8
}

/// Stripes, rings or checks, with a spacing and angle drawn from the seed.
struct Pattern {
    style: u64,
    period: u32,
    slant: u32,
}

impl Pattern {
    fn from_seed(seed: u64) -> Self {
        // A SplitMix64 step spreads neighbouring seeds (product ids) apart.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Self {
            style: z % 3,
            period: 12 + (z >> 8) as u32 % 36,
            slant: 1 + (z >> 16) as u32 % 3,
        }
    }

    /// 0–255: a diagonal gradient, brightened on the pattern's marks.
    fn shade(&self, x: u32, y: u32, width: u32, height: u32) -> u8 {
        let gradient = 150 + 70 * (x + y) / (width + height);
        let on_mark = match self.style {
            0 => (x + self.slant * y) % self.period < self.period / 3,
            1 => {
                let (dx, dy) = (x.abs_diff(width / 2), y.abs_diff(height / 2));
                ((dx * dx + dy * dy) as f64).sqrt() as u32 % self.period < self.period / 2
            }
            _ => (x / self.period + y / self.period).is_multiple_of(2),
        };
        (gradient + if on_mark { 35 } else { 0 }) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::model::MediaType;

    #[test]
    fn encodes_a_valid_png() {
        let png = placeholder_png(40, 30, [10, 120, 200], 42);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(MediaType::sniff(&png), Some(MediaType::PNG));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 40);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 30);
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));

        // The pixels decompress to height rows of a filter byte and width RGB triples.
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let mut pixels = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&png[41..41 + idat_len]),
            &mut pixels,
        )
        .unwrap();
        assert_eq!(pixels.len(), 30 * (1 + 3 * 40));
    }

    #[test]
    fn seeds_change_the_picture() {
        let a = placeholder_png(32, 32, [90, 90, 90], 1);
        assert_eq!(a, placeholder_png(32, 32, [90, 90, 90], 1));
        assert_ne!(a, placeholder_png(32, 32, [90, 90, 90], 2));
    }
}
