//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624, eqn. 3).
//!
//! Contract: pure functions on bytes; none panics or allocates. Sums are unfolded `u64`
//! accumulators (kept below 2^34 between calls) so several ranges (a pseudo header, then a
//! segment) add up before one [`fold`].

#[inline(always)]
fn be64(c: &[u8]) -> u64 {
    u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
}

/// One's-complement 64-bit add (end-around carry; never overflows).
#[inline(always)]
fn add64(a: u64, b: u64) -> u64 {
    let (r, carry) = a.overflowing_add(b);
    r + carry as u64
}

/// Adds `data` as big-endian 16-bit words (odd tail padded with zero) to `acc` (< 2^34).
/// Works on 64-bit words in two independent carry chains (the one's-complement sum is the same
/// modulo 0xffff for any word size that is a multiple of 16 bits). Returns a value < 2^34.
#[inline(always)]
pub fn sum(acc: u64, data: &[u8]) -> u64 {
    let (mut s0, mut s1) = (acc, 0u64);
    let mut c16 = data.chunks_exact(16);
    for c in &mut c16 {
        s0 = add64(s0, be64(&c[..8]));
        s1 = add64(s1, be64(&c[8..]));
    }
    let mut s = add64(s0, s1);
    let rest = c16.remainder();
    let mut c2 = rest.chunks_exact(2);
    let mut t = 0u64;
    for c in &mut c2 {
        t += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [b] = c2.remainder() {
        t += (*b as u64) << 8;
    }
    s = add64(s, t);
    (s & 0xffff_ffff) + (s >> 32)
}

/// Folds an unfolded sum to 16 bits with end-around carries.
#[inline(always)]
pub fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum to store over `data` (plus whatever `acc` already holds): `!fold(sum)`.
#[inline(always)]
pub fn compute(acc: u64, data: &[u8]) -> u16 {
    !fold(sum(acc, data))
}

/// True when `data` (plus `acc`), stored checksum included, sums to 0xffff.
#[inline(always)]
pub fn verify(acc: u64, data: &[u8]) -> bool {
    fold(sum(acc, data)) == 0xffff
}

/// RFC 1624 eqn. 3: the checksum after the bytes `old` became `new` (equal even lengths,
/// 16-bit aligned within the checksummed data).
#[inline(always)]
pub fn replace(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = (!csum) as u64;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += (!u16::from_be_bytes([o[0], o[1]])) as u64;
        acc += u16::from_be_bytes([n[0], n[1]]) as u64;
    }
    !fold(acc)
}

/// The sum of a UDP/TCP/ICMPv6 pseudo header: the address bytes (source then destination,
/// IPv4 or IPv6), the protocol and the upper-layer length.
#[inline(always)]
pub fn pseudo_header(addrs: &[u8], proto: u8, len: usize) -> u64 {
    sum(proto as u64 + len as u64, addrs)
}

/// [`replace`] for one 16-bit word.
#[inline(always)]
pub fn replace_u16(csum: u16, old: u16, new: u16) -> u16 {
    replace(csum, &old.to_be_bytes(), &new.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 section 3's example words 0001 f203 f4f5 f6f7: sum ddf2.
    static RFC1071: [u8; 8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    /// An IPv4 header (10.0.0.1 -> 10.0.0.2, UDP, TTL 64) with its checksum 0x26ca.
    static IP: [u8; 20] = [
        0x45, 0x00, 0x00, 0x21, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x26, 0xca, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
    ];

    #[test]
    fn rfc1071_example() {
        assert_eq!(fold(sum(0, &RFC1071)), 0xddf2);
        // Odd tail is padded with a zero byte; long inputs take the 16-byte path.
        assert_eq!(fold(sum(0, &[0x12])), 0x1200);
        let long: Vec<u8> = RFC1071.iter().cycle().take(40).copied().collect();
        assert_eq!(fold(sum(0, &long)), fold(5 * 0xddf2));
    }

    #[test]
    fn compute_verify_and_replace() {
        assert!(verify(0, &IP));
        let mut h = IP;
        h[10..12].fill(0);
        assert_eq!(compute(0, &h), 0x26ca);
        // TTL 64 -> 63 (the TTL/protocol word 0x4011 -> 0x3f11).
        let c = replace_u16(0x26ca, 0x4011, 0x3f11);
        h[8] = 0x3f;
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(0, &h));
        assert_eq!(replace(c, &[0x3f, 0x11], &[0x40, 0x11]), 0x26ca);
    }
}
