//! Datapath port numbers, shared by every module that names a port (actions, tunnels, the
//! pipeline, groups, xlate) so that none of them has to import another for it.
//!
//! Contract: a [`PortNo`] is a small dense integer assigned by the controller; this module
//! gives it no further meaning (reserved OpenFlow numbers live in [`crate::pipeline`]).

/// A datapath port number. Small dense integers assigned by the controller.
pub type PortNo = u32;

#[cfg(test)]
mod tests {
    /// The old paths name the same type.
    #[test]
    fn one_type_under_every_path() {
        let p: crate::port::PortNo = 7;
        let q: crate::dpaction::PortNo = p;
        let r: crate::PortNo = q;
        assert_eq!(r, 7);
    }
}
