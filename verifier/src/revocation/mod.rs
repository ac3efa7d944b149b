//! Revocation: the transparency log that carries revocation entries (spec/revocation.md).

pub mod merkle;
pub mod note;
