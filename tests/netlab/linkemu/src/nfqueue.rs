//! A minimal NFQUEUE client over a raw netlink socket: bind a queue in metadata-only mode,
//! read packet ids, and send verdicts (one packet, or a batch of every id up to one).
//!
//! Only what the delay line needs is here; the message layouts are those of the kernel's
//! `linux/netfilter/nfnetlink_queue.h`. All multi-byte attribute values are big-endian; the
//! netlink header itself is in host order.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;

const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
/// Accept instead of drop when the queue is full or this process is gone, so a crashed
/// emulator degrades to an unshaped link rather than a dead one; `stats` shows the count.
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;

pub const NF_DROP: u32 = 0;
pub const NF_ACCEPT: u32 = 1;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;

/// One bound queue.
pub struct Queue {
    fd: OwnedFd,
    num: u16,
    seq: u32,
    buf: Vec<u8>,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one netlink message: header, nfgenmsg, then attributes.
struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u16, flags: u16, seq: u32, queue: u16) -> Self {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&0u32.to_ne_bytes()); // length, set in `finish`
        b.extend_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
        b.extend_from_slice(&(libc::NLM_F_REQUEST as u16 | flags).to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        // nfgenmsg: family AF_UNSPEC, version 0, resource id = queue number (big-endian).
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&queue.to_be_bytes());
        Self(b)
    }

    fn attr(mut self, kind: u16, value: &[u8]) -> Self {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align4(self.0.len()), 0);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

impl Queue {
    /// Binds queue `num` in this network namespace: metadata only (the payload stays in the
    /// kernel), at most `max_len` packets waiting, fail-open.
    pub fn bind(num: u16, max_len: u32) -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked before it is owned.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl is valid (pid 0 lets the kernel choose).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `addr` lives across the call and its size is passed.
        let rc = unsafe {
            libc::bind(
                raw,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // A deep receive buffer: a burst must not overflow the socket while we sleep.
        let size: libc::c_int = 8 << 20;
        // SAFETY: setsockopt with a c_int value of the right size; failure is harmless.
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let mut q = Self {
            fd,
            num,
            seq: 0,
            buf: vec![0; 1 << 16],
        };
        // cmd: command, pad, protocol family (unused by BIND on current kernels).
        q.request(
            Msg::new(NFQNL_MSG_CONFIG, libc::NLM_F_ACK as u16, 0, num)
                .attr(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0]),
        )?;
        let mut params = 0u32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_META);
        q.request(
            Msg::new(NFQNL_MSG_CONFIG, libc::NLM_F_ACK as u16, 0, num)
                .attr(NFQA_CFG_PARAMS, &params)
                .attr(NFQA_CFG_QUEUE_MAXLEN, &max_len.to_be_bytes()),
        )?;
        q.request(
            Msg::new(NFQNL_MSG_CONFIG, libc::NLM_F_ACK as u16, 0, num)
                .attr(NFQA_CFG_FLAGS, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes())
                .attr(NFQA_CFG_MASK, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes()),
        )?;
        Ok(q)
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut bytes = msg.finish();
        bytes[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // SAFETY: a plain send(2) of an owned buffer; the kernel is the default destination
        // of a netlink socket bound with pid 0.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends a configuration message and waits for the kernel's acknowledgement.
    fn request(&mut self, msg: Msg) -> io::Result<()> {
        self.send(msg)?;
        let seq = self.seq;
        loop {
            let n = self.recv_raw(0)?;
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let (len, kind, mseq) = header(&self.buf[off..]);
                if kind == NLMSG_ERROR && mseq == seq {
                    let errno =
                        i32::from_ne_bytes(self.buf[off + 16..off + 20].try_into().unwrap());
                    return if errno == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-errno))
                    };
                }
                if len < NLMSG_HDRLEN {
                    break;
                }
                off += align4(len);
            }
        }
    }

    fn recv_raw(&mut self, flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: recv(2) into our own buffer, bounded by its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                flags,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Reads what has arrived without blocking and calls `on_packet(id)` for each queued
    /// packet, in the kernel's order. Returns how many there were (0: nothing waiting).
    pub fn drain(&mut self, mut on_packet: impl FnMut(u32)) -> io::Result<usize> {
        let mut count = 0;
        loop {
            let n = match self.recv_raw(libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(count),
                // The socket overflowed: packets were accepted by fail-open or dropped by the
                // kernel. Keep going; the counts will show it.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) => return Err(e),
            };
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let (len, kind, _) = header(&self.buf[off..]);
                if len < NLMSG_HDRLEN || off + len > n {
                    break;
                }
                if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET
                    && let Some(id) = packet_id(&self.buf[off + NLMSG_HDRLEN + 4..off + len])
                {
                    on_packet(id);
                    count += 1;
                }
                off += align4(len);
            }
        }
    }

    /// A verdict on one packet.
    pub fn verdict(&mut self, id: u32, verdict: u32) -> io::Result<()> {
        let msg = Msg::new(NFQNL_MSG_VERDICT, 0, 0, self.num)
            .attr(NFQA_VERDICT_HDR, &verdict_hdr(verdict, id));
        self.send(msg)
    }

    /// Accepts every packet of this queue with an id up to `id` that has no verdict yet.
    pub fn accept_through(&mut self, id: u32) -> io::Result<()> {
        let msg = Msg::new(NFQNL_MSG_VERDICT_BATCH, 0, 0, self.num)
            .attr(NFQA_VERDICT_HDR, &verdict_hdr(NF_ACCEPT, id));
        self.send(msg)
    }
}

impl AsRawFd for Queue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn verdict_hdr(verdict: u32, id: u32) -> [u8; 8] {
    let mut h = [0; 8];
    h[..4].copy_from_slice(&verdict.to_be_bytes());
    h[4..].copy_from_slice(&id.to_be_bytes());
    h
}

/// (length, type, sequence) of the netlink header at the start of `b`.
fn header(b: &[u8]) -> (usize, u16, u32) {
    let len = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
    let kind = u16::from_ne_bytes(b[4..6].try_into().unwrap());
    let seq = u32::from_ne_bytes(b[8..12].try_into().unwrap());
    (len, kind, seq)
}

/// The packet id from a packet message's attributes (after the nfgenmsg).
fn packet_id(mut attrs: &[u8]) -> Option<u32> {
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        // The top bits of the type are flags (nested, byte order).
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == NFQA_PACKET_HDR && len >= 8 {
            return Some(u32::from_be_bytes(attrs[4..8].try_into().unwrap()));
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_message_has_the_kernels_layout() {
        let bytes = Msg::new(NFQNL_MSG_VERDICT_BATCH, 0, 9, 3)
            .attr(NFQA_VERDICT_HDR, &verdict_hdr(NF_ACCEPT, 0x0102_0304))
            .finish();
        assert_eq!(bytes.len(), 16 + 4 + 12);
        assert_eq!(header(&bytes), (32, (3 << 8) | 3, 9));
        assert_eq!(&bytes[16..20], &[0, 0, 0, 3]);
        assert_eq!(&bytes[24..32], &[0, 0, 0, 1, 1, 2, 3, 4]);
    }

    #[test]
    fn a_packet_id_is_found_among_other_attributes() {
        let mut attrs = vec![6, 0, 9, 0, 0xaa, 0xbb, 0, 0];
        attrs.extend_from_slice(&[11, 0, 1, 0, 0, 0, 1, 44, 8, 0, 1, 0]);
        assert_eq!(packet_id(&attrs), Some(300));
        assert_eq!(packet_id(&[200, 0, 1, 0]), None);
    }
}
