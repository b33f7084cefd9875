//! Text forms of field values, in the style of `ovs-ofctl dump-flows`.

use crate::key::Field;
use crate::mac::MacAddr;
use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Displays one field value the way operators read it (MACs, dotted IPv4, IPv6, hex types).
pub struct FieldValue(pub Field, pub u128);

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Field::*;
        let v = self.1;
        match self.0 {
            EthSrc | EthDst | ArpSha | ArpTha => write!(f, "{}", MacAddr::from_u64(v as u64)),
            Ipv4Src | Ipv4Dst | ArpSpa | ArpTpa | TunIpv4Src | TunIpv4Dst => {
                write!(f, "{}", Ipv4Addr::from(v as u32))
            }
            Ipv6Src | Ipv6Dst | NdTarget | TunIpv6Src | TunIpv6Dst => {
                write!(f, "{}", Ipv6Addr::from(v))
            }
            EthType => write!(f, "0x{v:04x}"),
            VlanTci | TcpFlags | TunId | Metadata => write!(f, "{v:#x}"),
            _ => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            FieldValue(Field::EthDst, 0x0200_0000_00ff).to_string(),
            "02:00:00:00:00:ff"
        );
        assert_eq!(
            FieldValue(Field::Ipv4Src, 0x0a00_0001).to_string(),
            "10.0.0.1"
        );
        assert_eq!(FieldValue(Field::Ipv6Dst, 1).to_string(), "::1");
        assert_eq!(FieldValue(Field::EthType, 0x800).to_string(), "0x0800");
        assert_eq!(FieldValue(Field::TpDst, 80).to_string(), "80");
    }
}
