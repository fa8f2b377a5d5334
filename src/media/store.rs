//! The media store: files in an `object_store` (a local directory or an S3 bucket) under
//! content-addressed keys. The only place that talks to the object store.

use std::ops::Range;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::Multipart;
use futures::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutOptions,
    PutPayload,
};
use sha2::{Digest, Sha256};

use super::model::{MediaKey, MediaKindFilter, MediaLimits, MediaType, StoredMedia};
use super::upload::read_upload;
use crate::config::{Config, MediaBackend};
use crate::platform::{ApiError, ApiResult};

/// `Cache-Control` of every stored file: keys name their content, so it never changes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Images and video of the shop; opened once per process and shared by every domain.
#[derive(Debug)]
pub struct MediaStore {
    objects: Arc<dyn ObjectStore>,
    /// S3 keeps a content type and cache policy per object, so a CDN or browser reading the
    /// bucket directly gets them; a local directory cannot.
    object_attributes: bool,
    limits: MediaLimits,
    base_url: String,
}

/// A stored file, or a byte range of it, opened for streaming to a client.
pub struct MediaRead {
    pub stream: BoxStream<'static, object_store::Result<Bytes>>,
    /// The bytes `stream` yields, within `0..size`.
    pub range: Range<u64>,
    pub size: u64,
}

impl MediaStore {
    /// Opens the backend `media.backend` names; no network I/O happens here.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let media = &config.media;
        let (objects, object_attributes): (Arc<dyn ObjectStore>, bool) = match media.backend {
            MediaBackend::Local => {
                let dir = config.media_dir();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let local = LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("cannot open {}", dir.display()))?;
                (Arc::new(local), false)
            }
            MediaBackend::S3 => {
                let s3 = media
                    .s3
                    .as_ref()
                    .context("media.s3 is required with media.backend = \"s3\"")?;
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http)
                    // Files are deleted one at a time, and some S3-compatible stores
                    // (Alibaba Cloud OSS among them) lack the bulk `DeleteObjects` call.
                    .with_disable_bulk_delete(true);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(id) = &s3.access_key_id {
                    builder = builder.with_access_key_id(id);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                let bucket = builder.build().context("invalid media.s3 settings")?;
                match s3.prefix.as_deref().map(|p| p.trim_matches('/')) {
                    Some(prefix) if !prefix.is_empty() => {
                        (Arc::new(PrefixStore::new(bucket, prefix)), true)
                    }
                    _ => (Arc::new(bucket), true),
                }
            }
        };
        let base_url = media
            .public_base_url
            .as_deref()
            .unwrap_or("/media")
            .trim_end_matches('/')
            .to_owned();
        Ok(Self {
            objects,
            object_attributes,
            limits: MediaLimits {
                max_image_bytes: media.max_image_bytes,
                max_video_bytes: media.max_video_bytes,
            },
            base_url,
        })
    }

    pub fn limits(&self) -> MediaLimits {
        self.limits
    }

    /// Stores a file after reading its type from its bytes; the same bytes stored twice
    /// are one object with one key.
    pub async fn put(&self, filter: MediaKindFilter, bytes: Bytes) -> ApiResult<StoredMedia> {
        let media_type = MediaType::require(MediaType::sniff(&bytes), filter)?;
        let size = bytes.len() as u64;
        self.limits.check(media_type.kind, size)?;
        let hashed = bytes.clone();
        // Hashing 200 MiB of video takes a while: keep it off the request threads.
        let digest = tokio::task::spawn_blocking(move || Sha256::digest(&hashed))
            .await
            .map_err(ApiError::internal)?;
        let key = MediaKey::new(hex::encode(digest), media_type);
        let location = Path::from(key.to_string());
        match self.objects.head(&location).await {
            Ok(_) => tracing::debug!(%key, "media already stored"),
            Err(object_store::Error::NotFound { .. }) => {
                let mut options = PutOptions::default();
                if self.object_attributes {
                    options.attributes = Attributes::from_iter([
                        (Attribute::ContentType, media_type.content_type),
                        (Attribute::CacheControl, IMMUTABLE),
                    ]);
                }
                self.objects
                    .put_opts(&location, PutPayload::from_bytes(bytes), options)
                    .await
                    .map_err(storage_error)?;
                tracing::info!(%key, size, "media stored");
            }
            Err(err) => return Err(storage_error(err)),
        }
        Ok(self.describe(&key, size))
    }

    /// Reads form field `field_name` of an upload and stores it: an upload handler in one
    /// line.
    pub async fn upload(
        &self,
        form: &mut Multipart,
        field_name: &str,
        filter: MediaKindFilter,
    ) -> ApiResult<StoredMedia> {
        let bytes = read_upload(form, field_name, filter, self.limits).await?;
        self.put(filter, bytes).await
    }

    /// A stored file's bytes and content type (for exports and jobs; clients get files
    /// through `url`).
    pub async fn get(&self, key: &str) -> ApiResult<(Bytes, &'static str)> {
        let parsed = parse(key)?;
        let result = self
            .objects
            .get(&Path::from(key))
            .await
            .map_err(|e| read_error(e, key))?;
        let bytes = result.bytes().await.map_err(|e| read_error(e, key))?;
        Ok((bytes, parsed.media_type().content_type))
    }

    /// Removes a file. Identical uploads share a key, so a caller deletes only once no
    /// record of its own or of another domain refers to it. A missing file is not an error.
    pub async fn delete(&self, key: &str) -> ApiResult<()> {
        parse(key)?;
        match self.objects.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(storage_error(err)),
        }
    }

    /// Where clients fetch `key`.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.base_url)
    }

    /// The size of a stored file; a 404 problem when there is none.
    pub async fn size(&self, key: &MediaKey) -> ApiResult<u64> {
        let name = key.to_string();
        let meta = self
            .objects
            .head(&Path::from(name.as_str()))
            .await
            .map_err(|e| read_error(e, &name))?;
        Ok(meta.size)
    }

    /// Opens a stored file, or the byte `range` of it, for streaming.
    pub async fn read(&self, key: &MediaKey, range: Option<Range<u64>>) -> ApiResult<MediaRead> {
        let name = key.to_string();
        let options = GetOptions::new().with_range(range.map(GetRange::Bounded));
        let result = self
            .objects
            .get_opts(&Path::from(name.as_str()), options)
            .await
            .map_err(|e| read_error(e, &name))?;
        let (range, size) = (result.range.clone(), result.meta.size);
        Ok(MediaRead {
            stream: result.into_stream(),
            range,
            size,
        })
    }

    fn describe(&self, key: &MediaKey, size: u64) -> StoredMedia {
        let media_type = key.media_type();
        StoredMedia {
            key: key.to_string(),
            content_type: media_type.content_type.to_owned(),
            size,
            kind: media_type.kind,
            url: self.url(&key.to_string()),
        }
    }
}

fn parse(key: &str) -> ApiResult<MediaKey> {
    MediaKey::parse(key).ok_or_else(|| ApiError::not_found("media", key))
}

fn read_error(err: object_store::Error, key: &str) -> ApiError {
    match err {
        object_store::Error::NotFound { .. } => ApiError::not_found("media", key),
        err => storage_error(err),
    }
}

fn storage_error(err: object_store::Error) -> ApiError {
    ApiError::internal(format!("media storage failed: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::model::MediaKind;
    use crate::media::placeholder_png;

    fn store(dir: &std::path::Path, public_base_url: Option<&str>) -> MediaStore {
        let mut config = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        config.media.max_image_bytes = 64 * 1024;
        config.media.public_base_url = public_base_url.map(str::to_owned);
        MediaStore::open(&config).expect("cannot open the media store")
    }

    #[tokio::test]
    async fn stores_placeholders_as_png_once_per_content() {
        let dir = tempfile::tempdir().unwrap();
        let media = store(dir.path(), None);
        let png = Bytes::from(placeholder_png(64, 48, [200, 80, 40], 7));
        let stored = media
            .put(MediaKindFilter::Image, png.clone())
            .await
            .unwrap();
        assert_eq!(stored.content_type, "image/png");
        assert_eq!(stored.kind, MediaKind::Image);
        assert_eq!(stored.size, png.len() as u64);
        assert_eq!(stored.url, format!("/media/{}", stored.key));
        assert!(dir.path().join("media").join(&stored.key).is_file());

        let again = media.put(MediaKindFilter::Any, png.clone()).await.unwrap();
        assert_eq!(again, stored);
        let (bytes, content_type) = media.get(&stored.key).await.unwrap();
        assert_eq!((bytes, content_type), (png, "image/png"));

        media.delete(&stored.key).await.unwrap();
        media.delete(&stored.key).await.unwrap();
        assert_eq!(media.get(&stored.key).await.unwrap_err().status(), 404);
    }

    #[tokio::test]
    async fn refuses_unknown_types_and_oversize_files() {
        let dir = tempfile::tempdir().unwrap();
        let media = store(dir.path(), Some("https://cdn.example.com/m/"));
        let svg = Bytes::from_static(b"<svg xmlns='http://www.w3.org/2000/svg'/>");
        let err = media.put(MediaKindFilter::Any, svg).await.unwrap_err();
        assert_eq!(err.problem().code, "unsupported-media-type");
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(64 * 1024 + 1, 0);
        let err = media
            .put(MediaKindFilter::Image, Bytes::from(big))
            .await
            .unwrap_err();
        assert_eq!(err.problem().code, "media-too-large");
        assert_eq!(media.url("ab/x.png"), "https://cdn.example.com/m/ab/x.png");
        assert_eq!(media.get("../secret").await.unwrap_err().status(), 404);
    }
}
