//! Tables of the content domain.

pub mod ad;
pub mod directory;
pub mod menu;
pub mod menu_item;
pub mod page;
