//! The launcher role: profiles and flags resolved into one validated
//! `LaunchSpec`, rendered into a batch script, submitted.

use crate::Error;
use crate::cli::{LaunchArgs, ProfilesArgs, UpArgs};

pub fn up(_args: UpArgs) -> Result<(), Error> {
    Err(Error::NotYetImplemented("up"))
}

pub fn render(_args: LaunchArgs) -> Result<(), Error> {
    Err(Error::NotYetImplemented("render"))
}

pub fn profiles(_args: ProfilesArgs) -> Result<(), Error> {
    Err(Error::NotYetImplemented("profiles"))
}
