//! Orders: checkout, lifecycle, editing, splitting, picking, shipping and returns.

pub mod documents;
