//! Packet buffers with headroom, and the per-worker pool that owns them.
//!
//! Contract:
//! - A [`Buf`] is a fixed [`BUF_SIZE`]-byte area; a received frame starts [`HEADROOM`] bytes in,
//!   so encapsulation (up to 70 bytes of VXLAN over IPv6, plus VLAN tags) is a push into the
//!   headroom, never a copy of the payload.
//! - Frames larger than [`MAX_FRAME`] do not fit and are refused by [`Buf::fill`].
//! - Buffers are named by `u32` indices into a [`BufPool`] owned by one worker; the hot path
//!   moves indices, never buffers, and never allocates (the pool is allocated once).
//! - No accessor panics on any index/length a caller can produce from packet bytes; misuse by
//!   the datapath's own code (an out-of-pool index) is a bug and panics.

/// Bytes reserved in front of a received frame.
pub const HEADROOM: usize = 256;
/// Total bytes of one buffer.
pub const BUF_SIZE: usize = 2304;
/// Largest frame a buffer takes (2048 bytes: a 1500-byte MTU frame plus tags, with room).
pub const MAX_FRAME: usize = BUF_SIZE - HEADROOM;

/// One packet buffer.
#[repr(C, align(64))]
pub struct Buf {
    head: u16,
    len: u16,
    data: [u8; BUF_SIZE],
}

/// A frame did not fit in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte buffer")]
pub struct FrameTooLarge(pub usize);

impl Buf {
    /// An empty buffer.
    pub fn new() -> Box<Buf> {
        Box::new(Buf {
            head: HEADROOM as u16,
            len: 0,
            data: [0; BUF_SIZE],
        })
    }

    /// Resets to empty, data starting after the headroom.
    #[inline(always)]
    pub fn reset(&mut self) {
        self.head = HEADROOM as u16;
        self.len = 0;
    }

    /// Copies a frame in, after the headroom.
    #[inline(always)]
    pub fn fill(&mut self, frame: &[u8]) -> Result<(), FrameTooLarge> {
        if frame.len() > MAX_FRAME {
            return Err(FrameTooLarge(frame.len()));
        }
        self.head = HEADROOM as u16;
        self.len = frame.len() as u16;
        self.data[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        Ok(())
    }

    /// Sets the frame length (after the current head) without touching bytes; the caller then
    /// writes them through [`Buf::data_mut`]. Fails when it would not fit.
    #[inline(always)]
    pub fn set_len(&mut self, len: usize) -> Result<(), FrameTooLarge> {
        if self.head as usize + len > BUF_SIZE {
            return Err(FrameTooLarge(len));
        }
        self.len = len as u16;
        Ok(())
    }

    /// Makes the frame start at the headroom boundary with room for `len` bytes and returns
    /// them for writing (ports receive into this).
    #[inline(always)]
    pub fn rx_area(&mut self, len: usize) -> Result<&mut [u8], FrameTooLarge> {
        if len > MAX_FRAME {
            return Err(FrameTooLarge(len));
        }
        self.head = HEADROOM as u16;
        self.len = len as u16;
        Ok(&mut self.data[HEADROOM..HEADROOM + len])
    }

    /// The whole area after the headroom, for ports that learn the length only after reading.
    #[inline(always)]
    pub fn rx_full(&mut self) -> &mut [u8] {
        self.head = HEADROOM as u16;
        self.len = 0;
        &mut self.data[HEADROOM..]
    }

    /// The frame.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        &self.data[self.head as usize..self.head as usize + self.len as usize]
    }

    /// The frame, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.head as usize..self.head as usize + self.len as usize]
    }

    /// Frame length.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the frame is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes in front of the frame.
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.head as usize
    }

    /// Grows the frame by `n` bytes at the front and returns them (uninitialised content:
    /// whatever was there). `None` when the headroom is too small.
    #[inline(always)]
    pub fn push_head(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.head as usize {
            return None;
        }
        self.head -= n as u16;
        self.len += n as u16;
        Some(&mut self.data[self.head as usize..self.head as usize + n])
    }

    /// Drops `n` bytes from the front. `false` (and no change) when the frame is shorter.
    #[inline(always)]
    pub fn pull_head(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.head += n as u16;
        self.len -= n as u16;
        true
    }

    /// Shortens the frame to `len` bytes (no-op when already shorter).
    #[inline(always)]
    pub fn truncate(&mut self, len: usize) {
        if len < self.len as usize {
            self.len = len as u16;
        }
    }

    /// Opens a gap of `n` bytes at offset `off` by moving the first `off` bytes towards the
    /// front (into the headroom). Used to insert a VLAN tag after the MAC addresses.
    #[inline(always)]
    pub fn insert_gap(&mut self, off: usize, n: usize) -> Option<&mut [u8]> {
        if off > self.len as usize || n > self.head as usize {
            return None;
        }
        let old = self.head as usize;
        self.head -= n as u16;
        self.len += n as u16;
        let new = self.head as usize;
        self.data.copy_within(old..old + off, new);
        Some(&mut self.data[new + off..new + off + n])
    }

    /// Removes `n` bytes at offset `off` by moving the first `off` bytes back over them.
    #[inline(always)]
    pub fn remove_gap(&mut self, off: usize, n: usize) -> bool {
        if off + n > self.len as usize {
            return false;
        }
        let h = self.head as usize;
        self.data.copy_within(h..h + off, h + n);
        self.head += n as u16;
        self.len -= n as u16;
        true
    }

    /// Copies another buffer's frame into this one (same headroom).
    #[inline(always)]
    pub fn copy_from(&mut self, other: &Buf) {
        self.head = other.head;
        self.len = other.len;
        let (h, l) = (other.head as usize, other.len as usize);
        self.data[h..h + l].copy_from_slice(&other.data[h..h + l]);
    }
}

/// A worker's buffers, named by index, with a free list.
pub struct BufPool {
    bufs: Vec<Buf>,
    free: Vec<u32>,
}

impl BufPool {
    /// A pool of `n` buffers (allocated now, never again).
    pub fn new(n: usize) -> BufPool {
        let bufs: Vec<Buf> = (0..n)
            .map(|_| Buf {
                head: HEADROOM as u16,
                len: 0,
                data: [0; BUF_SIZE],
            })
            .collect();
        let free = (0..n as u32).rev().collect();
        BufPool { bufs, free }
    }

    /// Takes a free buffer (reset), or `None` when the pool is exhausted.
    #[inline(always)]
    pub fn alloc(&mut self) -> Option<u32> {
        let i = self.free.pop()?;
        self.bufs[i as usize].reset();
        Some(i)
    }

    /// Returns a buffer to the pool.
    #[inline(always)]
    pub fn free(&mut self, i: u32) {
        debug_assert!(
            self.free.len() < self.bufs.len(),
            "double free of buffer {i}"
        );
        self.free.push(i);
    }

    /// Copies buffer `i` into a fresh one and returns its index.
    #[inline]
    pub fn clone_buf(&mut self, i: u32) -> Option<u32> {
        let j = self.free.pop()?;
        let (a, b) = if i < j {
            let (lo, hi) = self.bufs.split_at_mut(j as usize);
            (&lo[i as usize], &mut hi[0])
        } else {
            let (lo, hi) = self.bufs.split_at_mut(i as usize);
            (&hi[0], &mut lo[j as usize])
        };
        b.copy_from(a);
        Some(j)
    }

    /// The buffer at `i`.
    #[inline(always)]
    pub fn get(&self, i: u32) -> &Buf {
        &self.bufs[i as usize]
    }

    /// The buffer at `i`, writable.
    #[inline(always)]
    pub fn get_mut(&mut self, i: u32) -> &mut Buf {
        &mut self.bufs[i as usize]
    }

    /// Buffers currently free.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Buffers in the pool.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_push_pull() {
        let mut b = Buf::new();
        b.fill(&[1, 2, 3, 4]).unwrap();
        assert_eq!(b.data(), &[1, 2, 3, 4]);
        b.push_head(2).unwrap().copy_from_slice(&[9, 9]);
        assert_eq!(b.data(), &[9, 9, 1, 2, 3, 4]);
        assert!(b.pull_head(3));
        assert_eq!(b.data(), &[2, 3, 4]);
        assert!(!b.pull_head(4));
        assert!(b.push_head(HEADROOM + 10).is_none());
        assert_eq!(
            b.fill(&vec![0; MAX_FRAME + 1]),
            Err(FrameTooLarge(MAX_FRAME + 1))
        );
        b.fill(&vec![7; MAX_FRAME]).unwrap();
        assert_eq!(b.len(), MAX_FRAME);
    }

    #[test]
    fn gaps() {
        let mut b = Buf::new();
        b.fill(&[1, 2, 3, 4, 5, 6]).unwrap();
        b.insert_gap(2, 2).unwrap().copy_from_slice(&[0xa, 0xb]);
        assert_eq!(b.data(), &[1, 2, 0xa, 0xb, 3, 4, 5, 6]);
        assert!(b.remove_gap(2, 2));
        assert_eq!(b.data(), &[1, 2, 3, 4, 5, 6]);
        assert!(!b.remove_gap(5, 2));
        assert!(b.insert_gap(7, 1).is_none());
    }

    #[test]
    fn pool_alloc_clone_free() {
        let mut p = BufPool::new(3);
        let a = p.alloc().unwrap();
        p.get_mut(a).fill(&[5; 10]).unwrap();
        let c = p.clone_buf(a).unwrap();
        assert_eq!(p.get(c).data(), &[5; 10]);
        let _d = p.alloc().unwrap();
        assert!(p.alloc().is_none());
        assert!(p.clone_buf(a).is_none());
        p.free(c);
        assert_eq!(p.free_count(), 1);
        // clone towards a lower index too
        let lo = p.alloc().unwrap();
        p.free(lo);
        let hi_src = 2u32.max(a);
        let j = p.clone_buf(hi_src).unwrap();
        assert_eq!(p.get(j).len(), p.get(hi_src).len());
    }
}
