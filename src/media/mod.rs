//! Media: images and video for products, brand logos, ads and pages, kept in an object
//! store (a local directory by default, an S3-compatible bucket when scaled out) under
//! content-addressed keys, and served with year-long cache headers.
//!
//! Other domains store files through [`MediaStore`] (held by the app as `app.media`) and
//! record the returned [`StoredMedia`]; an upload handler is
//! `state.media.upload(&mut form, "file", MediaKindFilter::Image)` on a [`MultipartForm`],
//! registered with `ApiRouter::upload_route` so its body may exceed the general limit.

pub mod model;
pub mod placeholder;
pub mod routes;
pub mod store;
pub mod upload;

pub use model::{MediaKind, MediaKindFilter, MediaLimits, StoredMedia};
pub use placeholder::placeholder_png;
pub use store::MediaStore;
pub use upload::{MultipartForm, read_field, read_upload};

use crate::platform::routing::Permission;

pub const MEDIA_WRITE: Permission = Permission::new("media.write", "Upload images and video");
