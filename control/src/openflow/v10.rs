//! OpenFlow 10 messages (being written).

use super::OfError;

/// An OpenFlow message of this version (being written).
#[derive(Clone, Debug, PartialEq)]
pub enum Message {}

impl Message {
    /// Parses one whole message.
    pub fn parse(b: &[u8]) -> Result<Message, OfError> {
        let h = super::Header::parse(b)?;
        Err(OfError::BadType(h.type_))
    }
    /// Emits the message.
    pub fn emit(&self) -> Vec<u8> {
        match *self {}
    }
}
