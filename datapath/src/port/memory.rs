//! Memory ports: rings of frames between threads (tests, the demo) and replay sources with
//! counting sinks (the benchmark). They never allocate after creation: a [`FrameRing`]
//! recycles fixed frame slots through a free queue; a replay source copies prebuilt frames.

use super::{RxBurst, BURST};
use crate::buf::{BufPool, MAX_FRAME};
use crossbeam::queue::ArrayQueue;
use std::sync::Arc;

/// A fixed frame slot (memory ports and upcalls carry these, recycled, never reallocated).
pub struct Frame {
    len: u16,
    data: [u8; MAX_FRAME],
}

impl Frame {
    /// A new empty slot (allocation: only at setup).
    pub fn new_boxed() -> Box<Frame> {
        Box::new(Frame {
            len: 0,
            data: [0; MAX_FRAME],
        })
    }
    /// The frame bytes.
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
    /// Replaces the content (truncates to the slot size, returns the stored length).
    #[inline(always)]
    pub fn set(&mut self, b: &[u8]) -> usize {
        let n = b.len().min(MAX_FRAME);
        self.data[..n].copy_from_slice(&b[..n]);
        self.len = n as u16;
        n
    }
}

/// A bounded lock-free ring of frames between two threads (a test or the controller on one
/// side, a worker on the other). Slots are recycled through a free queue: no allocation after
/// [`FrameRing::new`].
pub struct FrameRing {
    full: ArrayQueue<Box<Frame>>,
    free: ArrayQueue<Box<Frame>>,
    closed: std::sync::atomic::AtomicBool,
}

/// The ring had no free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame ring is full")]
pub struct RingFull;

impl FrameRing {
    /// A ring of `slots` frames.
    pub fn new(slots: usize) -> Arc<FrameRing> {
        let free = ArrayQueue::new(slots);
        for _ in 0..slots {
            let _ = free.push(Frame::new_boxed());
        }
        Arc::new(FrameRing {
            full: ArrayQueue::new(slots),
            free,
            closed: Default::default(),
        })
    }

    /// Enqueues a copy of `bytes` (frames longer than a buffer are still carried, truncated to
    /// [`MAX_FRAME`] + 1 bytes so the receiver sees and counts them as oversize).
    pub fn push(&self, bytes: &[u8]) -> Result<(), RingFull> {
        if self.is_closed() {
            return Err(RingFull);
        }
        let mut f = self.free.pop().ok_or(RingFull)?;
        f.set(bytes);
        if bytes.len() > MAX_FRAME {
            f.len = (MAX_FRAME + 1).min(u16::MAX as usize) as u16;
        }
        self.full.push(f).map_err(|f| {
            let _ = self.free.push(f);
            RingFull
        })
    }

    /// Dequeues one frame as a new vector (test side; allocates).
    pub fn pop(&self) -> Option<Vec<u8>> {
        let f = self.full.pop()?;
        let v = f.data[..(f.len as usize).min(MAX_FRAME)].to_vec();
        let _ = self.free.push(f);
        Some(v)
    }

    /// Dequeues one frame into a pool buffer (worker side; no allocation). `None` when empty;
    /// `Some(false)` when the frame did not fit a buffer (it is dropped).
    #[inline]
    pub fn pop_into(&self, buf: &mut crate::buf::Buf) -> Option<bool> {
        let f = self.full.pop()?;
        let len = f.len as usize;
        let ok = len <= MAX_FRAME && buf.fill(&f.data[..len]).is_ok();
        let _ = self.free.push(f);
        Some(ok)
    }

    /// Refuses every later push (the port behind the ring is gone).
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// True after [`FrameRing::close`].
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.full.len()
    }

    /// True when no frame waits.
    pub fn is_empty(&self) -> bool {
        self.full.is_empty()
    }

    /// Drains every waiting frame (test side).
    pub fn drain(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}

/// Where a memory port's received frames come from.
pub enum MemSource {
    /// Nothing is ever received.
    None,
    /// Frames pushed into a ring by another thread.
    Ring(Arc<FrameRing>),
    /// Prebuilt frames replayed in order, cyclically, `remaining` more times in total (the
    /// benchmark's generator). Frames are stored back to back, `stride` bytes apart.
    Replay {
        /// Frame bytes, `stride` apart.
        data: Vec<u8>,
        /// Length of each frame.
        lens: Vec<u16>,
        /// Distance between frame starts.
        stride: usize,
        /// Next frame to send.
        next: usize,
        /// Frames still to send.
        remaining: u64,
    },
}

/// Where a memory port's transmitted frames go.
pub enum MemSink {
    /// Counted and discarded (the benchmark's sink).
    Count,
    /// Copied into a ring read by another thread (full: counted as tx drops).
    Ring(Arc<FrameRing>),
}

/// A memory port.
pub struct MemPort {
    /// Receive side.
    pub source: MemSource,
    /// Transmit side.
    pub sink: MemSink,
}

impl MemPort {
    /// A port fed and drained by rings (tests).
    pub fn rings(rx: Arc<FrameRing>, tx: Arc<FrameRing>) -> MemPort {
        MemPort {
            source: MemSource::Ring(rx),
            sink: MemSink::Ring(tx),
        }
    }

    /// A replay source over `frames` (each at most `MAX_FRAME` bytes) with a counting sink.
    pub fn replay(frames: &[Vec<u8>], total: u64) -> MemPort {
        if frames.is_empty() {
            return MemPort {
                source: MemSource::None,
                sink: MemSink::Count,
            };
        }
        let frames: Vec<&[u8]> = frames
            .iter()
            .map(|f| &f[..f.len().min(MAX_FRAME)])
            .collect();
        let stride = frames
            .iter()
            .map(|f| f.len())
            .max()
            .unwrap_or(0)
            .next_multiple_of(64)
            .max(64);
        let mut data = vec![0u8; stride * frames.len()];
        for (i, f) in frames.iter().enumerate() {
            data[i * stride..i * stride + f.len()].copy_from_slice(f);
        }
        let lens = frames.iter().map(|f| f.len() as u16).collect();
        MemPort {
            source: MemSource::Replay {
                data,
                lens,
                stride,
                next: 0,
                remaining: total,
            },
            sink: MemSink::Count,
        }
    }

    /// A sink-only port.
    pub fn sink() -> MemPort {
        MemPort {
            source: MemSource::None,
            sink: MemSink::Count,
        }
    }

    /// Receives up to `BURST` frames into pool buffers (the [`super::PortKind`] contract).
    #[inline]
    pub fn rx_burst(&mut self, pool: &mut BufPool, out: &mut [u32; BURST]) -> RxBurst {
        let mut r = RxBurst::default();
        match &mut self.source {
            MemSource::None => {}
            MemSource::Ring(ring) => {
                while r.n < BURST {
                    // Check for a buffer first so a frame is never taken off the ring and then
                    // lost: it waits in the ring for the next burst instead.
                    if pool.free_count() == 0 {
                        r.no_buffer = true;
                        break;
                    }
                    let Some(f) = ring.full.pop() else { break };
                    let len = f.len as usize;
                    if len > MAX_FRAME {
                        r.oversize += 1;
                    } else if let Some(b) = pool.alloc() {
                        // Cannot fail: len <= MAX_FRAME was checked above.
                        let _ = pool.get_mut(b).fill(&f.data[..len]);
                        out[r.n] = b;
                        r.n += 1;
                    }
                    let _ = ring.free.push(f);
                }
            }
            MemSource::Replay {
                data,
                lens,
                stride,
                next,
                remaining,
            } => {
                let want = (BURST as u64).min(*remaining) as usize;
                while r.n < want {
                    let Some(b) = pool.alloc() else {
                        r.no_buffer = true;
                        break;
                    };
                    let len = lens[*next] as usize;
                    let off = *next * *stride;
                    // Cannot fail: replay frames are built at most MAX_FRAME long.
                    let _ = pool.get_mut(b).fill(&data[off..off + len]);
                    out[r.n] = b;
                    r.n += 1;
                    *next += 1;
                    if *next == lens.len() {
                        *next = 0;
                    }
                }
                *remaining -= r.n as u64;
            }
        }
        r
    }

    /// Transmits a prefix of `bufs` and returns its length (the [`super::PortKind`] contract):
    /// a counting sink takes everything; a ring takes what fits.
    #[inline]
    pub fn tx(&mut self, pool: &BufPool, bufs: &[u32]) -> usize {
        match &self.sink {
            MemSink::Count => bufs.len(),
            MemSink::Ring(ring) => {
                for (i, &b) in bufs.iter().enumerate() {
                    let Some(mut f) = ring.free.pop() else {
                        return i;
                    };
                    f.set(pool.get(b).data());
                    // Cannot fail: a slot taken from `free` always fits in `full`.
                    let _ = ring.full.push(f);
                }
                bufs.len()
            }
        }
    }

    /// Frames a replay source still has to send (0 for other sources).
    pub fn remaining(&self) -> u64 {
        match &self.source {
            MemSource::Replay { remaining, .. } => *remaining,
            _ => 0,
        }
    }

    /// Sets how many more frames a replay source sends (no-op for other sources).
    pub fn set_remaining(&mut self, n: u64) {
        if let MemSource::Replay { remaining, .. } = &mut self.source {
            *remaining = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::{Port, PortKind};

    #[test]
    fn oversized_and_closed_rings_never_panic() {
        let r = FrameRing::new(2);
        r.push(&vec![0xab; MAX_FRAME + 300]).unwrap(); // longer than a slot: marked oversize
        let mut b = crate::buf::Buf::new();
        assert_eq!(
            r.pop_into(&mut b),
            Some(false),
            "oversize frame dropped, not sliced past the slot"
        );
        r.push(&[1, 2, 3]).unwrap();
        assert_eq!(r.pop_into(&mut b), Some(true));
        assert_eq!(b.data(), &[1, 2, 3]);
        assert_eq!(r.pop_into(&mut b), None);
        r.close();
        assert_eq!(r.push(&[1]), Err(RingFull), "a closed ring refuses frames");
        let mut p = MemPort::replay(&[], 10);
        let mut pool = BufPool::new(2);
        let mut out = [0u32; BURST];
        assert_eq!(
            p.rx_burst(&mut pool, &mut out).n,
            0,
            "an empty replay sends nothing"
        );
    }

    #[test]
    fn ring_roundtrip_and_full() {
        let r = FrameRing::new(2);
        r.push(&[1, 2, 3]).unwrap();
        r.push(&[4]).unwrap();
        assert_eq!(r.push(&[5]), Err(RingFull));
        assert_eq!(r.pop(), Some(vec![1, 2, 3]));
        assert_eq!(r.drain(), vec![vec![4]]);
        assert!(r.is_empty());
    }

    #[test]
    fn ring_port_rx_tx_counts() {
        let rx = FrameRing::new(8);
        let tx = FrameRing::new(1);
        let mut p = Port::new(
            1,
            "m1",
            PortKind::Memory(MemPort::rings(rx.clone(), tx.clone())),
        );
        let mut pool = BufPool::new(4);
        rx.push(&[0xaa; 60]).unwrap();
        rx.push(&vec![0; MAX_FRAME + 100]).unwrap();
        rx.push(&[0xbb; 70]).unwrap();
        let mut out = [0u32; BURST];
        let r = p.rx_burst(&mut pool, &mut out);
        assert_eq!((r.n, r.oversize, r.no_buffer), (2, 1, false));
        assert_eq!(p.counters.rx_bytes, 130);
        assert_eq!(p.send(&mut pool, out[0]), 0);
        assert_eq!(p.send(&mut pool, out[1]), 0);
        assert_eq!(p.flush(&mut pool), 1, "tx ring holds one frame");
        assert_eq!(pool.free_count(), 4, "every buffer returned");
        assert_eq!(tx.pop(), Some(vec![0xaa; 60]));
        assert_eq!(p.counters.tx_packets, 1);
        assert_eq!(p.counters.tx_dropped, 1);
    }

    #[test]
    fn replay_sends_exactly_n_cyclically() {
        let mut p = Port::new(
            1,
            "gen",
            PortKind::Memory(MemPort::replay(&[vec![1; 64], vec![2; 64]], 5)),
        );
        let mut pool = BufPool::new(64);
        let mut out = [0u32; BURST];
        let r = p.rx_burst(&mut pool, &mut out);
        assert_eq!(r.n, 5);
        assert_eq!(pool.get(out[2]).data(), &[1; 64]);
        assert_eq!(pool.get(out[3]).data(), &[2; 64]);
        assert_eq!(p.rx_burst(&mut pool, &mut out).n, 0);
        let PortKind::Memory(m) = &mut p.kind else {
            unreachable!()
        };
        m.set_remaining(1);
        assert_eq!(p.rx_burst(&mut pool, &mut out).n, 1);
    }

    #[test]
    fn down_port_neither_receives_nor_sends() {
        let rx = FrameRing::new(2);
        let tx = FrameRing::new(2);
        let mut p = Port::new(
            1,
            "m",
            PortKind::Memory(MemPort::rings(rx.clone(), tx.clone())),
        );
        let mut pool = BufPool::new(2);
        rx.push(&[1; 20]).unwrap();
        p.up = false;
        let mut out = [0u32; BURST];
        assert_eq!(p.rx_burst(&mut pool, &mut out).n, 0);
        let b = pool.alloc().unwrap();
        p.send(&mut pool, b);
        assert_eq!(p.flush(&mut pool), 1);
        assert!(tx.is_empty());
        assert_eq!(pool.free_count(), 2);
    }
}
