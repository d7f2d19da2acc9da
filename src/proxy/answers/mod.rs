//! What the proxy answers itself, instead of the backend:
//!
//! - `failure`: the one table from what went wrong to an HTTP status
//! - `pages`: the HTML a browser sees (starting, ended, errors)
//! - `phases`: the launcher's last word about a pending job, for the
//!   starting page

pub(super) mod failure;
pub(super) mod pages;
pub(super) mod phases;
