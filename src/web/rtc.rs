//! One WebRTC connection to a peer: an RTCPeerConnection with a single negotiated, ordered,
//! reliable, binary data channel (id 0 on both sides, so no `ondatachannel` dance).

use super::js_error;
use crate::protocol::signal::{IceServer, SignalPayload};
use crate::transfer_view::{IceStat, PeerPath};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelType, RtcIceCandidateInit,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcSdpType, RtcSessionDescriptionInit,
};

/// Above this many bytes queued in the channel we stop sending (Chromium throws at 16 MiB).
pub const HIGH_WATER: u32 = 8 * 1024 * 1024;
/// `bufferedamountlow` fires below this; sending resumes.
pub const LOW_WATER: u32 = 2 * 1024 * 1024;

/// When a channel stops and resumes sending.
#[derive(Clone, Copy)]
pub struct Water {
    pub high: u32,
    pub low: u32,
}

impl Water {
    pub const NORMAL: Self = Self {
        high: HIGH_WATER,
        low: LOW_WATER,
    };
    /// Test-only (`#smallbuffer`): a buffer that the swarm's requests overflow, so the
    /// pause and resume path runs in every transfer.
    pub const SMALL: Self = Self {
        high: 512 * 1024,
        low: 128 * 1024,
    };

    /// Whether a message of `len` bytes may go into a channel holding `buffered`. An empty
    /// channel takes any message, so one larger than the mark cannot wait forever.
    fn fits(self, buffered: u32, len: usize) -> bool {
        buffered == 0 || u64::from(buffered) + len as u64 <= u64::from(self.high)
    }
}
/// Frames waiting behind a full channel beyond this many bytes mean the peer takes far
/// less than it asks for (the swarm holds uploads while blocked): it is disconnected.
pub const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;

pub enum RtcEvent {
    /// A local ICE candidate to trickle to the peer.
    Candidate(SignalPayload),
    Open {
        max_message: u32,
    },
    Closed(String),
    /// ICE (or DTLS) failed: no candidate pair worked.
    Failed,
    Message(Vec<u8>),
    BufferLow,
}

pub struct Conn {
    pub pc: RtcPeerConnection,
    pub dc: RtcDataChannel,
    pub open: bool,
    pub remote_set: bool,
    pub pending_candidates: Vec<SignalPayload>,
    /// Our own offer or answer went out; until then local candidates wait in `outbox` so
    /// the peer never sees a candidate before the description it belongs to.
    pub described: bool,
    pub outbox: Vec<SignalPayload>,
    /// Frames waiting for the channel's buffer to drain.
    pub queue: std::collections::VecDeque<Vec<u8>>,
    /// Bytes in `queue`.
    pub queued_bytes: usize,
    pub blocked: bool,
    water: Water,
    /// The most bytes ever in the channel's send buffer right after a send: never above
    /// the high-water mark (shown to tests as `data-channel-peak`).
    pub peak_buffered: u32,
    pub created_ms: f64,
    /// Direct or through a relay, once the open channel's stats tell.
    pub path: PeerPath,
    _closures: Vec<Box<dyn std::any::Any>>,
}

fn ice_config(servers: &[IceServer]) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    let list = js_sys::Array::new();
    for s in servers {
        let entry = web_sys::RtcIceServer::new();
        let urls = js_sys::Array::new();
        for u in &s.urls {
            urls.push(&u.into());
        }
        entry.set_urls(&urls);
        if let Some(user) = &s.username {
            entry.set_username(user);
        }
        if let Some(cred) = &s.credential {
            entry.set_credential(cred);
        }
        list.push(&entry);
    }
    config.set_ice_servers(&list);
    config
}

impl Conn {
    pub fn new(
        servers: &[IceServer],
        water: Water,
        on_event: impl Fn(RtcEvent) + Clone + 'static,
    ) -> Result<Self, String> {
        let pc =
            RtcPeerConnection::new_with_configuration(&ice_config(servers)).map_err(js_error)?;
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(0);
        init.set_ordered(true);
        let dc = pc.create_data_channel_with_data_channel_dict("meshdrop", &init);
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(water.low);

        let mut closures: Vec<Box<dyn std::any::Any>> = Vec::new();
        let ev = on_event.clone();
        let on_candidate = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
            move |e: RtcPeerConnectionIceEvent| {
                if let Some(c) = e.candidate() {
                    ev(RtcEvent::Candidate(SignalPayload::Candidate {
                        candidate: c.candidate(),
                        sdp_mid: c.sdp_mid(),
                        sdp_m_line_index: c.sdp_m_line_index(),
                    }));
                }
            },
        );
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        closures.push(Box::new(on_candidate));

        let ev = on_event.clone();
        let pc2 = pc.clone();
        let on_state = Closure::<dyn FnMut()>::new(move || {
            use web_sys::RtcPeerConnectionState as S;
            match pc2.connection_state() {
                S::Failed => ev(RtcEvent::Failed),
                S::Closed => ev(RtcEvent::Closed("connection closed".into())),
                _ => {}
            }
        });
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        closures.push(Box::new(on_state));

        let ev = on_event.clone();
        let pc3 = pc.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            // The peer's limit, from its SDP (Chromium: 256 KiB); ours caps it anyway.
            let max = js_sys::Reflect::get(&pc3, &"sctp".into())
                .ok()
                .filter(|s| !s.is_null() && !s.is_undefined())
                .and_then(|s| js_sys::Reflect::get(&s, &"maxMessageSize".into()).ok())
                .and_then(|v| v.as_f64())
                .unwrap_or(65536.0);
            ev(RtcEvent::Open {
                max_message: max.min(f64::from(u32::MAX)) as u32,
            })
        });
        dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        closures.push(Box::new(on_open));

        let ev = on_event.clone();
        let on_close =
            Closure::<dyn FnMut()>::new(move || ev(RtcEvent::Closed("channel closed".into())));
        dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        closures.push(Box::new(on_close));

        let ev = on_event.clone();
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Ok(buf) = e.data().dyn_into::<js_sys::ArrayBuffer>() {
                    let message = js_sys::Uint8Array::new(&buf).to_vec();
                    super::pace_collector(message.len());
                    ev(RtcEvent::Message(message));
                }
            });
        dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        closures.push(Box::new(on_message));

        let ev = on_event;
        let on_low = Closure::<dyn FnMut()>::new(move || ev(RtcEvent::BufferLow));
        dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        closures.push(Box::new(on_low));

        Ok(Self {
            pc,
            dc,
            open: false,
            remote_set: false,
            pending_candidates: Vec::new(),
            described: false,
            outbox: Vec::new(),
            queue: Default::default(),
            queued_bytes: 0,
            blocked: false,
            water,
            peak_buffered: 0,
            created_ms: super::now_ms(),
            path: PeerPath::Checking,
            _closures: closures,
        })
    }

    pub async fn offer(pc: &RtcPeerConnection) -> Result<SignalPayload, String> {
        let offer = JsFuture::from(pc.create_offer()).await.map_err(js_error)?;
        let sdp = js_sys::Reflect::get(&offer, &"sdp".into())
            .ok()
            .and_then(|v| v.as_string())
            .ok_or("offer without SDP")?;
        let desc = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
        desc.set_sdp(&sdp);
        JsFuture::from(pc.set_local_description(&desc))
            .await
            .map_err(js_error)?;
        Ok(SignalPayload::Offer { sdp })
    }

    /// Applies the peer's offer and returns our answer.
    pub async fn answer(pc: &RtcPeerConnection, sdp: &str) -> Result<SignalPayload, String> {
        let remote = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
        remote.set_sdp(sdp);
        JsFuture::from(pc.set_remote_description(&remote))
            .await
            .map_err(js_error)?;
        let answer = JsFuture::from(pc.create_answer()).await.map_err(js_error)?;
        let sdp = js_sys::Reflect::get(&answer, &"sdp".into())
            .ok()
            .and_then(|v| v.as_string())
            .ok_or("answer without SDP")?;
        let desc = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
        desc.set_sdp(&sdp);
        JsFuture::from(pc.set_local_description(&desc))
            .await
            .map_err(js_error)?;
        Ok(SignalPayload::Answer { sdp })
    }

    pub async fn accept_answer(pc: &RtcPeerConnection, sdp: &str) -> Result<(), String> {
        let remote = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
        remote.set_sdp(sdp);
        JsFuture::from(pc.set_remote_description(&remote))
            .await
            .map(|_| ())
            .map_err(js_error)
    }

    pub async fn add_candidate(pc: &RtcPeerConnection, c: &SignalPayload) -> Result<(), String> {
        let SignalPayload::Candidate {
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } = c
        else {
            return Ok(());
        };
        let init = RtcIceCandidateInit::new(candidate);
        init.set_sdp_mid(sdp_mid.as_deref());
        init.set_sdp_m_line_index(*sdp_m_line_index);
        JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)))
            .await
            .map(|_| ())
            .map_err(js_error)
    }

    /// Which way the connection's data goes, from the candidate pair its stats report as
    /// selected; `None` while there is none (or the stats cannot be read).
    pub async fn path(pc: &RtcPeerConnection) -> Option<PeerPath> {
        let report = JsFuture::from(pc.get_stats()).await.ok()?;
        // RTCStatsReport is maplike: iterating it yields `[id, stats]` entries.
        let stats: Vec<IceStat> = js_sys::try_iter(&report)
            .ok()??
            .filter_map(Result::ok)
            .filter_map(|entry| js_sys::Reflect::get_u32(&entry, 1).ok())
            .filter_map(|stat| ice_stat(&stat))
            .collect();
        PeerPath::from_stats(&stats)
    }

    /// Sends now if the channel has room, else queues. Returns true when this send made the
    /// channel blocked (the swarm should hold further uploads).
    pub fn send(&mut self, bytes: Vec<u8>) -> bool {
        if !self.blocked
            && self.water.fits(self.dc.buffered_amount(), bytes.len())
            && self.dc.send_with_u8_array(&bytes).is_ok()
        {
            self.peak_buffered = self.peak_buffered.max(self.dc.buffered_amount());
            return false;
        }
        self.queued_bytes += bytes.len();
        self.queue.push_back(bytes);
        let newly = !self.blocked;
        self.blocked = true;
        newly
    }

    /// After `bufferedamountlow`: sends what fits. Returns true when the queue emptied.
    pub fn drain(&mut self) -> bool {
        while let Some(next) = self.queue.front() {
            if !self.water.fits(self.dc.buffered_amount(), next.len()) {
                return false;
            }
            let next = self.queue.pop_front().expect("peeked");
            if self.dc.send_with_u8_array(&next).is_err() {
                self.queue.push_front(next);
                return false;
            }
            self.queued_bytes -= next.len();
            self.peak_buffered = self.peak_buffered.max(self.dc.buffered_amount());
        }
        let was = self.blocked;
        self.blocked = false;
        was
    }

    pub fn close(&self) {
        // Every handler goes: their closures are dropped with this `Conn`, and an event
        // reaching a dropped closure throws (a late message, candidate or close would).
        self.dc.set_onopen(None);
        self.dc.set_onclose(None);
        self.dc.set_onmessage(None);
        self.dc.set_onbufferedamountlow(None);
        self.pc.set_onicecandidate(None);
        self.pc.set_onconnectionstatechange(None);
        self.dc.close();
        self.pc.close();
    }
}

/// What [`PeerPath::from_stats`] needs of one stats entry; `None` for entries of other
/// types (codecs, data channels, ...).
fn ice_stat(stat: &wasm_bindgen::JsValue) -> Option<IceStat> {
    let get = |key: &str| js_sys::Reflect::get(stat, &key.into()).ok();
    let text = |key: &str| get(key).and_then(|v| v.as_string());
    let flag = |key: &str| get(key).and_then(|v| v.as_bool()).unwrap_or(false);
    let kind = text("type")?;
    if !matches!(
        kind.as_str(),
        "transport" | "candidate-pair" | "local-candidate" | "remote-candidate"
    ) {
        return None;
    }
    Some(IceStat {
        id: text("id")?,
        kind,
        selected_pair: text("selectedCandidatePairId"),
        selected: flag("selected"),
        nominated: flag("nominated"),
        succeeded: text("state").as_deref() == Some("succeeded"),
        local: text("localCandidateId"),
        remote: text("remoteCandidateId"),
        candidate_type: text("candidateType"),
    })
}

/// A connection dropped without `close` (e.g. the page's transfer stopped because its
/// component unmounted) closes too, instead of leaving a live peer connection whose event
/// handlers are gone. Closing twice does nothing.
impl Drop for Conn {
    fn drop(&mut self) {
        self.close();
    }
}
