//! The flow key: every header field the switch can match on, laid out as fixed 64-bit words.
//!
//! Contract:
//! - A [`FlowKey`] is `KEY_WORDS` little `u64` words. Every [`Field`] lives at a fixed
//!   `(word, shift, bits)` location; 128-bit fields take two consecutive words (high word first).
//!   Values are host integers (an IPv4 address `10.0.0.1` is `0x0a00_0001`, a MAC address is its
//!   six bytes big-endian in the low 48 bits of a `u64`).
//! - The same type is used as a mask: a set bit means "this bit is consulted".
//! - Unset fields are zero. The extractor records in [`PacketKey::map`] which words it may have
//!   written, so hashing and comparing a packet's key touch only those words (the idea of Open
//!   vSwitch's miniflow, without the compaction).
//! - Hashing is a fixed multiply-xorshift over words; it is stable across runs (benchmarks and
//!   tests rely on it being deterministic), not DoS-resistant: caches are bounded, never grown.

use core::fmt;

/// Number of 64-bit words in a [`FlowKey`].
pub const KEY_WORDS: usize = 24;

/// A flow key (or a mask over one): fixed words, see the module docs for the layout.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C, align(64))]
pub struct FlowKey {
    /// The raw words. Prefer [`FlowKey::get`] / [`FlowKey::set`]; the layout is [`Field::loc`].
    pub w: [u64; KEY_WORDS],
}

impl Default for FlowKey {
    fn default() -> Self {
        Self::ZERO
    }
}

/// Word indices of the layout, named for the hot-path code that writes whole words.
pub mod words {
    /// in_port(63..32) | eth_type(31..16) | vlan_tci(15..0)
    pub const PORT_TYPE_TCI: usize = 0;
    /// eth_dst(63..16) | ip_proto(15..8) | ip_frag(7..0)
    pub const ETH_DST_PROTO_FRAG: usize = 1;
    /// eth_src(63..16) | ip_tos(15..8) | ip_ttl(7..0)
    pub const ETH_SRC_TOS_TTL: usize = 2;
    /// ipv4_src(63..32) | ipv4_dst(31..0)
    pub const IPV4: usize = 3;
    /// tp_src(63..48) | tp_dst(47..32) | tcp_flags(31..16) | icmp_type(15..8) | icmp_code(7..0)
    pub const L4: usize = 4;
    /// tun_id
    pub const TUN_ID: usize = 5;
    /// tun_ipv4_src(63..32) | tun_ipv4_dst(31..0)
    pub const TUN_IPV4: usize = 6;
    /// tun_ipv6_src (two words)
    pub const TUN_IPV6_SRC: usize = 7;
    /// tun_ipv6_dst (two words)
    pub const TUN_IPV6_DST: usize = 9;
    /// metadata
    pub const METADATA: usize = 11;
    /// reg0(63..32) | reg1(31..0)
    pub const REG01: usize = 12;
    /// reg2(63..32) | reg3(31..0)
    pub const REG23: usize = 13;
    /// ipv6_src (two words)
    pub const IPV6_SRC: usize = 14;
    /// ipv6_dst (two words)
    pub const IPV6_DST: usize = 16;
    /// arp_spa(63..32) | arp_tpa(31..0)
    pub const ARP_PA: usize = 18;
    /// arp_sha(63..16) | arp_op(15..0)
    pub const ARP_SHA_OP: usize = 19;
    /// arp_tha(63..16) | spare
    pub const ARP_THA: usize = 20;
    /// nd_target (two words)
    pub const ND_TARGET: usize = 21;
    /// ipv6_label(51..32) | spare
    pub const IPV6_LABEL: usize = 23;
}

/// `ip_frag` bit: the packet is a fragment (first or later).
pub const FRAG_ANY: u8 = 1;
/// `ip_frag` bit: the packet is a later fragment (offset != 0); L4 fields are absent.
pub const FRAG_LATER: u8 = 2;

/// `vlan_tci` bit meaning "a VLAN tag is present" (the 802.1Q CFI/DEI position, as in OVS).
pub const VLAN_PRESENT: u16 = 0x1000;
/// VLAN id bits of `vlan_tci`.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// Priority code point shift inside `vlan_tci`.
pub const VLAN_PCP_SHIFT: u16 = 13;

macro_rules! fields {
    ($( $(#[$doc:meta])* $name:ident = ($word:expr, $shift:expr, $bits:expr, $text:expr) ),* $(,)?) => {
        /// A matchable (and settable) field of the flow key.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field { $( $(#[$doc])* $name ),* }

        impl Field {
            /// Every field, in layout order.
            pub const ALL: &'static [Field] = &[ $(Field::$name),* ];

            /// `(word, shift, bits)`: where the field lives. For 128-bit fields `word` is the
            /// high word and `word + 1` the low word; `shift` is 0.
            #[inline(always)]
            pub const fn loc(self) -> (usize, u32, u32) {
                match self { $(Field::$name => ($word, $shift, $bits)),* }
            }

            /// The field's name as used in `dump-flows` style text (OVS names where they exist).
            pub const fn name(self) -> &'static str {
                match self { $(Field::$name => $text),* }
            }
        }
    };
}

use words as W;

fields! {
    /// Datapath input port.
    InPort = (W::PORT_TYPE_TCI, 32, 32, "in_port"),
    /// Ethernet type (after any VLAN tag).
    EthType = (W::PORT_TYPE_TCI, 16, 16, "dl_type"),
    /// Whole VLAN TCI with the [`VLAN_PRESENT`] bit.
    VlanTci = (W::PORT_TYPE_TCI, 0, 16, "vlan_tci"),
    /// VLAN id (12 bits).
    VlanVid = (W::PORT_TYPE_TCI, 0, 12, "dl_vlan"),
    /// VLAN present bit alone.
    VlanPresent = (W::PORT_TYPE_TCI, 12, 1, "vlan_present"),
    /// VLAN priority (3 bits).
    VlanPcp = (W::PORT_TYPE_TCI, 13, 3, "dl_vlan_pcp"),
    /// Ethernet destination.
    EthDst = (W::ETH_DST_PROTO_FRAG, 16, 48, "dl_dst"),
    /// IP protocol / IPv6 next header (after extension headers).
    IpProto = (W::ETH_DST_PROTO_FRAG, 8, 8, "nw_proto"),
    /// Fragment bits: [`FRAG_ANY`], [`FRAG_LATER`].
    IpFrag = (W::ETH_DST_PROTO_FRAG, 0, 8, "nw_frag"),
    /// Ethernet source.
    EthSrc = (W::ETH_SRC_TOS_TTL, 16, 48, "dl_src"),
    /// IPv4 TOS / IPv6 traffic class (DSCP and ECN).
    IpTos = (W::ETH_SRC_TOS_TTL, 8, 8, "nw_tos_full"),
    /// DSCP (upper 6 bits of TOS).
    IpDscp = (W::ETH_SRC_TOS_TTL, 10, 6, "ip_dscp"),
    /// ECN (lower 2 bits of TOS).
    IpEcn = (W::ETH_SRC_TOS_TTL, 8, 2, "nw_ecn"),
    /// IPv4 TTL / IPv6 hop limit.
    IpTtl = (W::ETH_SRC_TOS_TTL, 0, 8, "nw_ttl"),
    /// IPv4 source.
    Ipv4Src = (W::IPV4, 32, 32, "nw_src"),
    /// IPv4 destination.
    Ipv4Dst = (W::IPV4, 0, 32, "nw_dst"),
    /// TCP/UDP/SCTP source port.
    TpSrc = (W::L4, 48, 16, "tp_src"),
    /// TCP/UDP/SCTP destination port.
    TpDst = (W::L4, 32, 16, "tp_dst"),
    /// TCP flags (12 bits used).
    TcpFlags = (W::L4, 16, 16, "tcp_flags"),
    /// ICMPv4/ICMPv6 type.
    IcmpType = (W::L4, 8, 8, "icmp_type"),
    /// ICMPv4/ICMPv6 code.
    IcmpCode = (W::L4, 0, 8, "icmp_code"),
    /// Tunnel id (VXLAN VNI in the low 24 bits).
    TunId = (W::TUN_ID, 0, 64, "tun_id"),
    /// Outer IPv4 source of the tunnel a packet arrived on / leaves by.
    TunIpv4Src = (W::TUN_IPV4, 32, 32, "tun_src"),
    /// Outer IPv4 destination of the tunnel.
    TunIpv4Dst = (W::TUN_IPV4, 0, 32, "tun_dst"),
    /// Outer IPv6 source of the tunnel.
    TunIpv6Src = (W::TUN_IPV6_SRC, 0, 128, "tun_ipv6_src"),
    /// Outer IPv6 destination of the tunnel.
    TunIpv6Dst = (W::TUN_IPV6_DST, 0, 128, "tun_ipv6_dst"),
    /// OpenFlow metadata (pipeline-only, never on the wire).
    Metadata = (W::METADATA, 0, 64, "metadata"),
    /// Register 0 (pipeline-only).
    Reg0 = (W::REG01, 32, 32, "reg0"),
    /// Register 1 (pipeline-only).
    Reg1 = (W::REG01, 0, 32, "reg1"),
    /// Register 2 (pipeline-only).
    Reg2 = (W::REG23, 32, 32, "reg2"),
    /// Register 3 (pipeline-only).
    Reg3 = (W::REG23, 0, 32, "reg3"),
    /// IPv6 source.
    Ipv6Src = (W::IPV6_SRC, 0, 128, "ipv6_src"),
    /// IPv6 destination.
    Ipv6Dst = (W::IPV6_DST, 0, 128, "ipv6_dst"),
    /// ARP sender protocol address.
    ArpSpa = (W::ARP_PA, 32, 32, "arp_spa"),
    /// ARP target protocol address.
    ArpTpa = (W::ARP_PA, 0, 32, "arp_tpa"),
    /// ARP sender hardware address.
    ArpSha = (W::ARP_SHA_OP, 16, 48, "arp_sha"),
    /// ARP opcode.
    ArpOp = (W::ARP_SHA_OP, 0, 16, "arp_op"),
    /// ARP target hardware address.
    ArpTha = (W::ARP_THA, 16, 48, "arp_tha"),
    /// IPv6 neighbor discovery target address.
    NdTarget = (W::ND_TARGET, 0, 128, "nd_target"),
    /// IPv6 flow label (20 bits).
    Ipv6Label = (W::IPV6_LABEL, 32, 20, "ipv6_label"),
}

impl Field {
    /// Width in bits.
    #[inline(always)]
    pub const fn bits(self) -> u32 {
        self.loc().2
    }

    /// All-ones value of this field's width.
    #[inline(always)]
    pub const fn full_mask(self) -> u128 {
        let b = self.bits();
        if b == 128 {
            u128::MAX
        } else {
            (1u128 << b) - 1
        }
    }

    /// Fields that exist only inside the pipeline and never on the wire.
    pub const fn is_pipeline_only(self) -> bool {
        matches!(
            self,
            Field::Metadata | Field::Reg0 | Field::Reg1 | Field::Reg2 | Field::Reg3 | Field::InPort
        )
    }

    /// Tunnel metadata fields (consumed by a tunnel push, never written into inner headers).
    pub const fn is_tunnel(self) -> bool {
        matches!(
            self,
            Field::TunId
                | Field::TunIpv4Src
                | Field::TunIpv4Dst
                | Field::TunIpv6Src
                | Field::TunIpv6Dst
        )
    }

    /// Looks a field up by its [`Field::name`].
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.iter().copied().find(|f| f.name() == name)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FlowKey {
    /// The all-zero key (also: the mask that consults nothing).
    pub const ZERO: FlowKey = FlowKey { w: [0; KEY_WORDS] };
    /// The mask that consults every bit.
    pub const ALL_ONES: FlowKey = FlowKey {
        w: [u64::MAX; KEY_WORDS],
    };

    /// Reads a field.
    #[inline(always)]
    pub fn get(&self, f: Field) -> u128 {
        let (w, shift, bits) = f.loc();
        if bits == 128 {
            ((self.w[w] as u128) << 64) | self.w[w + 1] as u128
        } else {
            let m = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            ((self.w[w] >> shift) & m) as u128
        }
    }

    /// Writes a field (bits above its width are ignored).
    #[inline(always)]
    pub fn set(&mut self, f: Field, v: u128) {
        let (w, shift, bits) = f.loc();
        if bits == 128 {
            self.w[w] = (v >> 64) as u64;
            self.w[w + 1] = v as u64;
        } else {
            let m = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            self.w[w] = (self.w[w] & !(m << shift)) | (((v as u64) & m) << shift);
        }
    }

    /// Writes only the bits of `v` selected by `mask` (OpenFlow's masked set-field).
    #[inline]
    pub fn set_masked(&mut self, f: Field, v: u128, mask: u128) {
        let old = self.get(f);
        self.set(f, (old & !mask) | (v & mask));
    }

    /// Bitwise AND with a mask.
    #[inline(always)]
    pub fn and(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::ZERO;
        for i in 0..KEY_WORDS {
            out.w[i] = self.w[i] & mask.w[i];
        }
        out
    }

    /// Bitwise OR (union of two masks).
    #[inline]
    pub fn or(&self, other: &FlowKey) -> FlowKey {
        let mut out = FlowKey::ZERO;
        for i in 0..KEY_WORDS {
            out.w[i] = self.w[i] | other.w[i];
        }
        out
    }

    /// In-place union (used by xlate to un-wildcard).
    #[inline]
    pub fn or_assign(&mut self, other: &FlowKey) {
        for i in 0..KEY_WORDS {
            self.w[i] |= other.w[i];
        }
    }

    /// True when every set bit of `self` is also set in `other` (mask inclusion).
    #[inline]
    pub fn is_subset_of(&self, other: &FlowKey) -> bool {
        (0..KEY_WORDS).all(|i| self.w[i] & !other.w[i] == 0)
    }

    /// True when the key is all zero.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.w.iter().all(|&w| w == 0)
    }

    /// Bitmap of the non-zero words (bit i = word i).
    #[inline]
    pub fn nonzero_map(&self) -> u32 {
        let mut m = 0u32;
        for i in 0..KEY_WORDS {
            m |= ((self.w[i] != 0) as u32) << i;
        }
        m
    }

    /// Mask helper: sets a field's mask to all ones.
    pub fn with_field(mut self, f: Field) -> FlowKey {
        self.set(f, f.full_mask());
        self
    }

    /// Hash of the words selected by `map` (bit i = word i). Equal keys over the same map hash
    /// equally; this is the hash the caches use.
    #[inline(always)]
    pub fn hash_map(&self, map: u32) -> u32 {
        let mut h = HASH_SEED;
        let mut m = map;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            h = hash_add(h, self.w[i]);
        }
        hash_finish(h)
    }

    /// Hash of `self & mask`, over the words listed in `words` (a mask's non-zero words).
    #[inline(always)]
    pub fn hash_masked(&self, mask: &FlowKey, words: &[u8]) -> u32 {
        let mut h = HASH_SEED;
        for &i in words {
            let i = i as usize;
            h = hash_add(h, self.w[i] & mask.w[i]);
        }
        hash_finish(h)
    }

    /// True when `self & mask == value` over `words` (a mask's non-zero words; `value` is
    /// already masked).
    #[inline(always)]
    pub fn matches_masked(&self, value: &FlowKey, mask: &FlowKey, words: &[u8]) -> bool {
        let mut diff = 0u64;
        for &i in words {
            let i = i as usize;
            diff |= (self.w[i] & mask.w[i]) ^ value.w[i];
        }
        diff == 0
    }
}

const HASH_SEED: u64 = 0x243f_6a88_85a3_08d3;
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline(always)]
fn hash_add(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(HASH_MUL).rotate_left(29)
}

#[inline(always)]
fn hash_finish(h: u64) -> u32 {
    let h = (h ^ (h >> 32)).wrapping_mul(HASH_MUL);
    (h >> 32) as u32
}

/// Hints the CPU to bring the cache line holding `r` into L1. A no-op off x86_64. The worker
/// calls this a stage ahead for a whole batch, so memory latency overlaps instead of adding up.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint; it never faults and `r` is a valid reference.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Converts six MAC bytes into the key's integer form.
#[inline(always)]
pub fn mac_to_u64(b: &[u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// Converts the key's integer form of a MAC address back to bytes.
#[inline(always)]
pub fn u64_to_mac(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The key of one received packet: the key plus the words the extractor may have written and
/// the hash over them. Two packet keys are the same flow when `map` and those words are equal.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct PacketKey {
    /// The key; words outside `map` are zero.
    pub key: FlowKey,
    /// Bit i set: word i may be non-zero.
    pub map: u32,
    /// `key.hash_map(map)`.
    pub hash: u32,
}

impl PacketKey {
    /// Builds a packet key from a full key (computes the map and hash; slow-path helper).
    pub fn from_key(key: FlowKey) -> PacketKey {
        let map = key.nonzero_map();
        PacketKey {
            key,
            map,
            hash: key.hash_map(map),
        }
    }

    /// Recomputes `hash` after `key`/`map` were written.
    #[inline(always)]
    pub fn rehash(&mut self) {
        self.hash = self.key.hash_map(self.map);
    }

    /// Exact equality over the mapped words (the EMC compare).
    #[inline(always)]
    pub fn same_flow(&self, other: &PacketKey) -> bool {
        if self.map != other.map || self.hash != other.hash {
            return false;
        }
        let mut m = self.map;
        let mut diff = 0u64;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            diff |= self.key.w[i] ^ other.key.w[i];
        }
        diff == 0
    }
}

impl Default for PacketKey {
    fn default() -> Self {
        PacketKey {
            key: FlowKey::ZERO,
            map: 0,
            hash: 0,
        }
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        f.write_str("FlowKey{")?;
        for &fld in Field::ALL {
            let v = self.get(fld);
            if v != 0
                && !matches!(
                    fld,
                    Field::VlanVid
                        | Field::VlanPresent
                        | Field::VlanPcp
                        | Field::IpDscp
                        | Field::IpEcn
                )
            {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{}={:#x}", fld.name(), v)?;
            }
        }
        f.write_str("}")
    }
}

impl fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PacketKey{{map={:#x},hash={:#x},{:?}}}",
            self.map, self.hash, self.key
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap_except_declared_subfields() {
        // Sub-fields (vid/present/pcp of tci, dscp/ecn of tos) overlap their parent on purpose.
        let subs = [
            Field::VlanVid,
            Field::VlanPresent,
            Field::VlanPcp,
            Field::IpDscp,
            Field::IpEcn,
        ];
        let mut seen = FlowKey::ZERO;
        for &f in Field::ALL.iter().filter(|f| !subs.contains(f)) {
            let mut m = FlowKey::ZERO;
            m.set(f, f.full_mask());
            assert_eq!(seen.and(&m), FlowKey::ZERO, "{f} overlaps another field");
            seen.or_assign(&m);
        }
    }

    #[test]
    fn get_set_roundtrip_every_field() {
        for &f in Field::ALL {
            let mut k = FlowKey::ALL_ONES;
            let v = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128 & f.full_mask();
            k.set(f, v);
            assert_eq!(k.get(f), v, "{f}");
            let mut z = FlowKey::ZERO;
            z.set(f, u128::MAX);
            assert_eq!(z.get(f), f.full_mask(), "{f}");
        }
    }

    #[test]
    fn subfields_alias_parent() {
        let mut k = FlowKey::ZERO;
        k.set(
            Field::VlanTci,
            (5 << VLAN_PCP_SHIFT) as u128 | VLAN_PRESENT as u128 | 100,
        );
        assert_eq!(k.get(Field::VlanVid), 100);
        assert_eq!(k.get(Field::VlanPcp), 5);
        assert_eq!(k.get(Field::VlanPresent), 1);
        k.set(Field::IpTos, 0xb9);
        assert_eq!(k.get(Field::IpDscp), 0xb9 >> 2);
        assert_eq!(k.get(Field::IpEcn), 1);
    }

    #[test]
    fn mac_roundtrip_and_names() {
        let m = [0x02, 0, 0, 0xaa, 0xbb, 0xcc];
        assert_eq!(u64_to_mac(mac_to_u64(&m)), m);
        assert_eq!(Field::from_name("dl_dst"), Some(Field::EthDst));
        assert_eq!(Field::from_name("nope"), None);
    }

    #[test]
    fn packet_key_equality_and_hash() {
        let mut a = FlowKey::ZERO;
        a.set(Field::EthDst, 0x0200_0000_0001);
        a.set(Field::InPort, 3);
        let pa = PacketKey::from_key(a);
        let pb = PacketKey::from_key(a);
        assert!(pa.same_flow(&pb));
        let mut c = a;
        c.set(Field::EthDst, 0x0200_0000_0002);
        assert!(!pa.same_flow(&PacketKey::from_key(c)));
        // masked hash over the full mask equals hash over the map when map covers all words.
        let words: Vec<u8> = (0..KEY_WORDS as u8).collect();
        assert!(a.matches_masked(&a, &FlowKey::ALL_ONES, &words));
        assert!(!c.matches_masked(&a, &FlowKey::ALL_ONES, &words));
    }
}
