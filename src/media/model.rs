//! What a stored file is: its kind, its type as read from its first bytes, and its key.

use std::fmt;

use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::ApiError;

/// Images and video are the two kinds of media the shop shows; each has its own size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
        }
    }
}

/// Which kinds a caller accepts: a brand logo must be an image, product media may be either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKindFilter {
    Image,
    Video,
    Any,
}

impl MediaKindFilter {
    pub fn allows(self, kind: MediaKind) -> bool {
        match self {
            Self::Image => kind == MediaKind::Image,
            Self::Video => kind == MediaKind::Video,
            Self::Any => true,
        }
    }

    /// The types this filter accepts, for error messages.
    fn allowed_types(self) -> Vec<&'static str> {
        MediaType::ALL
            .iter()
            .filter(|t| self.allows(t.kind))
            .map(|t| t.content_type)
            .collect()
    }
}

/// The byte limits per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    pub max_image_bytes: u64,
    pub max_video_bytes: u64,
}

impl MediaLimits {
    pub fn of(self, kind: MediaKind) -> u64 {
        match kind {
            MediaKind::Image => self.max_image_bytes,
            MediaKind::Video => self.max_video_bytes,
        }
    }

    /// The largest file `filter` may let through, before its type is known.
    pub fn largest(self, filter: MediaKindFilter) -> u64 {
        match filter {
            MediaKindFilter::Image => self.max_image_bytes,
            MediaKindFilter::Video => self.max_video_bytes,
            MediaKindFilter::Any => self.max_image_bytes.max(self.max_video_bytes),
        }
    }

    /// Refuses a file of `size` bytes once it is known to be a `kind`.
    pub fn check(self, kind: MediaKind, size: u64) -> Result<(), ApiError> {
        let limit = self.of(kind);
        if size > limit {
            return Err(too_large(kind, limit));
        }
        Ok(())
    }
}

fn too_large(kind: MediaKind, limit: u64) -> ApiError {
    let kind = match kind {
        MediaKind::Image => "an image",
        MediaKind::Video => "a video",
    };
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "media-too-large",
        format!("{kind} may be at most {limit} bytes"),
    )
}

/// A file type Bazaar stores. Nothing else is accepted: SVG and HTML can carry scripts that
/// would run on the shop's origin, and unknown formats cannot be shown anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType {
    pub kind: MediaKind,
    pub content_type: &'static str,
    /// The key's extension, which also tells the type back when the file is served.
    pub extension: &'static str,
}

impl MediaType {
    const fn new(kind: MediaKind, content_type: &'static str, extension: &'static str) -> Self {
        Self {
            kind,
            content_type,
            extension,
        }
    }

    pub const PNG: Self = Self::new(MediaKind::Image, "image/png", "png");
    pub const JPEG: Self = Self::new(MediaKind::Image, "image/jpeg", "jpg");
    pub const GIF: Self = Self::new(MediaKind::Image, "image/gif", "gif");
    pub const WEBP: Self = Self::new(MediaKind::Image, "image/webp", "webp");
    pub const AVIF: Self = Self::new(MediaKind::Image, "image/avif", "avif");
    pub const MP4: Self = Self::new(MediaKind::Video, "video/mp4", "mp4");
    pub const MOV: Self = Self::new(MediaKind::Video, "video/quicktime", "mov");
    pub const WEBM: Self = Self::new(MediaKind::Video, "video/webm", "webm");

    pub const ALL: [Self; 8] = [
        Self::PNG,
        Self::JPEG,
        Self::GIF,
        Self::WEBP,
        Self::AVIF,
        Self::MP4,
        Self::MOV,
        Self::WEBM,
    ];

    /// How many leading bytes `sniff` needs to decide (fewer only at the end of a file).
    pub const SNIFF_LEN: usize = 64;

    /// The type of a file, read from its magic bytes; the name and the declared content
    /// type of an upload are never trusted.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        let head = &head[..head.len().min(Self::SNIFF_LEN)];
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::PNG)
        } else if head.starts_with(b"\xff\xd8\xff") {
            Some(Self::JPEG)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(Self::GIF)
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(Self::WEBP)
        } else if head.starts_with(b"\x1a\x45\xdf\xa3") {
            // Matroska and WebM share the EBML header; only the document type tells them
            // apart.
            head.windows(4).any(|w| w == b"webm").then_some(Self::WEBM)
        } else {
            sniff_iso_media(head)
        }
    }

    /// The type a key's extension stands for.
    fn from_extension(extension: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.extension == extension)
    }

    /// Refuses a type `filter` does not accept (or no known type at all) with a 415 that
    /// lists what would be accepted.
    pub fn require(found: Option<Self>, filter: MediaKindFilter) -> Result<Self, ApiError> {
        match found {
            Some(media_type) if filter.allows(media_type.kind) => Ok(media_type),
            _ => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!(
                    "the file is not of an accepted type; send one of {}",
                    filter.allowed_types().join(", ")
                ),
            )),
        }
    }
}

/// ISO base media files (MP4, QuickTime, AVIF) start with an `ftyp` box naming a major
/// brand and the brands the file is compatible with.
fn sniff_iso_media(head: &[u8]) -> Option<MediaType> {
    if head.len() < 12 || &head[4..8] != b"ftyp" {
        return None;
    }
    let box_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let end = box_len.clamp(12, head.len());
    let major = &head[8..12];
    // Bytes 12..16 are the minor version; compatible brands follow.
    let compatible = head.get(16..end).unwrap_or_default().chunks_exact(4);
    let brands: Vec<&[u8]> = std::iter::once(major).chain(compatible).collect();
    const MP4_BRANDS: [&[u8]; 9] = [
        b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ",
    ];
    if brands.iter().any(|b| *b == b"avif" || *b == b"avis") {
        Some(MediaType::AVIF)
    } else if major == b"qt  " {
        Some(MediaType::MOV)
    } else if brands.iter().any(|b| MP4_BRANDS.contains(b)) {
        Some(MediaType::MP4)
    } else {
        None
    }
}

/// A stored file's key: `{sha256[..2]}/{sha256}.{ext}`. Content addressing makes identical
/// uploads share one object and makes every object immutable, so it can be cached forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaKey {
    sha256: String,
    media_type: MediaType,
}

impl MediaKey {
    pub fn new(sha256: String, media_type: MediaType) -> Self {
        Self { sha256, media_type }
    }

    /// Reads a key from a URL; anything not of the key's exact shape (`..`, other
    /// directories, unknown extensions, upper-case hex) is `None`.
    pub fn parse(key: &str) -> Option<Self> {
        let (dir, file) = key.split_once('/')?;
        let (sha256, extension) = file.split_once('.')?;
        let is_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let valid = sha256.len() == 64 && is_hex(sha256) && dir == &sha256[..2];
        let media_type = MediaType::from_extension(extension)?;
        valid.then(|| Self::new(sha256.to_owned(), media_type))
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn media_type(&self) -> MediaType {
        self.media_type
    }
}

impl fmt::Display for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}.{}",
            &self.sha256[..2],
            self.sha256,
            self.media_type.extension
        )
    }
}

/// A file in the media store, as callers record it (e.g. on a product) and clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoredMedia {
    /// `{sha256[..2]}/{sha256}.{ext}`; identical files have the same key.
    pub key: String,
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    pub kind: MediaKind,
    /// Where clients fetch it: below `media.public_base_url`, else `/media/{key}`.
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let len = 16 + 4 * compatible.len();
        let mut head = (len as u32).to_be_bytes().to_vec();
        head.extend_from_slice(b"ftyp");
        head.extend_from_slice(major);
        head.extend_from_slice(&[0, 0, 2, 0]);
        for brand in compatible {
            head.extend_from_slice(*brand);
        }
        head.extend_from_slice(&[0, 0, 0, 8, b'f', b'r', b'e', b'e']);
        head
    }

    #[test]
    fn sniffs_types_by_their_magic_bytes() {
        let cases: [(&[u8], Option<MediaType>); 12] = [
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some(MediaType::PNG)),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", Some(MediaType::JPEG)),
            (b"GIF89a\x01\0\x01\0", Some(MediaType::GIF)),
            (b"RIFF\x24\0\0\0WEBPVP8 ", Some(MediaType::WEBP)),
            (&ftyp(b"avif", &[b"mif1", b"miaf"]), Some(MediaType::AVIF)),
            (&ftyp(b"isom", &[b"isom", b"avc1"]), Some(MediaType::MP4)),
            (&ftyp(b"qt  ", &[b"qt  "]), Some(MediaType::MOV)),
            (
                b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
                Some(MediaType::WEBM),
            ),
            (
                b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska",
                None,
            ),
            (&ftyp(b"heic", &[b"mif1", b"heic"]), None),
            (b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>", None),
            (b"<!DOCTYPE html><html>", None),
        ];
        for (head, expected) in cases {
            assert_eq!(MediaType::sniff(head), expected, "{head:?}");
        }
        assert_eq!(MediaType::sniff(b""), None);
        assert_eq!(MediaType::sniff(b"\0\0\0\x20ftyp"), None);
    }

    #[test]
    fn keys_round_trip_and_refuse_other_shapes() {
        let sha = "ab".repeat(32);
        let key = MediaKey::new(sha.clone(), MediaType::PNG);
        let text = key.to_string();
        assert_eq!(text, format!("ab/{sha}.png"));
        assert_eq!(MediaKey::parse(&text), Some(key));
        for bad in [
            "../etc/passwd".to_owned(),
            format!("cd/{sha}.png"),
            format!("ab/{sha}.svg"),
            format!("ab/{}.png", sha.to_uppercase()),
            format!("ab/{sha}.png/x"),
            format!("ab/../{sha}.png"),
            format!("ab/{}.png", &sha[..63]),
        ] {
            assert_eq!(MediaKey::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn refusals_name_the_accepted_types() {
        let err = MediaType::require(Some(MediaType::MP4), MediaKindFilter::Image).unwrap_err();
        let problem = err.problem();
        assert_eq!(problem.status, 415);
        assert!(problem.detail.contains("image/png"), "{}", problem.detail);
        assert!(!problem.detail.contains("video/mp4"), "{}", problem.detail);
        let limits = MediaLimits {
            max_image_bytes: 10,
            max_video_bytes: 100,
        };
        assert!(limits.check(MediaKind::Image, 10).is_ok());
        assert_eq!(
            limits.check(MediaKind::Image, 11).unwrap_err().status(),
            413
        );
        assert!(limits.check(MediaKind::Video, 11).is_ok());
    }
}
