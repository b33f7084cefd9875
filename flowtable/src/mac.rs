//! The MAC address type: one parse and one text form (`aa:bb:cc:dd:ee:ff`, lowercase) for the
//! whole project, the 48-bit integer form flow keys hold, and (feature `serde`) a string in
//! JSON and TOML.
//!
//! Contract: [`MacAddr::from_str`](core::str::FromStr) accepts exactly six two-digit hex
//! octets separated by `:` (either case) and nothing else; `Display` prints what `from_str`
//! reads back.

use core::fmt;
use core::str::FromStr;

/// A MAC address (stored and printed as lowercase `aa:bb:cc:dd:ee:ff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// As a 48-bit number.
    pub fn to_u64(self) -> u64 {
        self.0.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b))
    }
    /// From the low 48 bits of `v`.
    pub fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
    /// Group (multicast/broadcast) bit set.
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// A MAC string that is not six hex octets separated by `:`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a valid MAC address")]
pub struct BadMac(pub String);

impl FromStr for MacAddr {
    type Err = BadMac;
    fn from_str(s: &str) -> Result<Self, BadMac> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n == 6 || part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(BadMac(s.to_string()));
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| BadMac(s.to_string()))?;
            n += 1;
        }
        if n != 6 {
            return Err(BadMac(s.to_string()));
        }
        Ok(MacAddr(out))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The octets.
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(m: MacAddr) -> Self {
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_same_text() {
        let m: MacAddr = "02:AB:cd:00:10:ff".parse().unwrap();
        assert_eq!(m.0, [0x02, 0xab, 0xcd, 0x00, 0x10, 0xff]);
        assert_eq!(m.to_string(), "02:ab:cd:00:10:ff");
        assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert!(!m.is_multicast() && MacAddr::BROADCAST.is_multicast());
    }

    #[test]
    fn refuses_anything_but_six_hex_octets() {
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:00:00:00:00:00",
            "02-00-00-00-00-00",
            "02:00:00:00:00:0g",
            "02:00:00:00:00:000",
            " 02:00:00:00:00:00",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(BadMac(bad.into())), "{bad:?}");
        }
    }
}
