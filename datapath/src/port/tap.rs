//! (being written by the ports work: see port/mod.rs for the contract)

use super::{RxBurst, BURST};
use crate::buf::BufPool;

/// (being written)
pub struct TapPort {}

impl TapPort {
    /// (being written)
    pub fn rx_burst(&mut self, _pool: &mut BufPool, _out: &mut [u32; BURST]) -> RxBurst {
        RxBurst::default()
    }
    /// (being written)
    pub fn tx(&mut self, _pool: &BufPool, _bufs: &[u32]) -> usize {
        0
    }
}
