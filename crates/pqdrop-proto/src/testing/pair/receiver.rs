//! The receiving side of [`super::Pair`]: the receiver machine over an
//! in-memory output tree and its partial files.

use super::*;

pub(super) struct SimReceiver {
    pub(super) m: Option<Receiver>,
    pub(super) keep_existing: bool,
    pub(super) session: Option<Established>,
    pub(super) frames: Vec<Vec<u8>>,
    pub(super) out: Tree,
    pub(super) partials: BTreeMap<String, Vec<u8>>,
    pub(super) stdout: Vec<u8>,
    /// The file being written: path, announced size, bytes so far.
    pub(super) current: Option<(String, u64)>,
    pub(super) end: Option<End>,
    pub(super) overwrite: bool,
    pub(super) consent: bool,
    pub(super) consent_after: Duration,
    /// An offer waits for the user, who answers at this time.
    pub(super) answer_at: Option<Duration>,
    /// This side's identity, shared when agreed, and the sender's.
    pub(super) identity: Option<Identity>,
    pub(super) peer: Option<PublicIdentity>,
}

impl SimReceiver {
    pub(super) fn start(&mut self, session: Established) {
        let mut m = Receiver::new(ReceiverConfig::session(&session));
        if let Some(id) = &self.identity {
            m.share_identity(id).expect("a fresh receiver shares");
        }
        self.m = Some(m);
        self.session = Some(session);
    }

    pub(super) fn take_frames(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.frames)
    }

    pub(super) fn seal(&mut self, last: bool) {
        let (Some(m), Some(s)) = (self.m.as_mut(), self.session.as_mut()) else { return };
        let mut pt = Vec::new();
        m.poll_transmit(&mut pt);
        if (pt.is_empty() && !last) || s.sealer.is_finished() {
            return;
        }
        let mut frame = Vec::new();
        if s.sealer.seal_to_vec(&pt, last, &mut frame).is_ok() {
            self.frames.push(frame);
        }
    }

    /// Seals a KeepAlive record (the timer said one is due).
    pub(super) fn keepalive(&mut self) {
        if let Some(s) = self.session.as_mut() {
            seal_keepalive(s, &mut self.frames);
        }
    }

    /// The user answers a waiting offer, if it is time; `true` if they did.
    pub(super) fn answer(&mut self, now: Duration) -> bool {
        if self.end.is_some() || self.answer_at.is_none_or(|t| now < t) {
            return false;
        }
        self.answer_at = None;
        let Some(m) = self.m.as_mut() else { return false };
        if let Err(e) = if self.consent { m.accept() } else { m.refuse() } {
            self.end = Some(End::Failed(e));
            return true;
        }
        let close = m.wants_close();
        self.seal(close);
        if close {
            self.end = Some(End::Local("refused".into()));
        }
        true
    }

    pub(super) fn on_frame(&mut self, frame: &[u8], now: Duration) {
        if self.end.is_some() {
            return;
        }
        let opened = split_frame(frame).and_then(|(t, mut body)| {
            let s = self.session.as_mut().ok_or(Error::Misuse("no session"))?;
            let n = s.opener.open(t, &mut body)?;
            body.truncate(n);
            Ok(body)
        });
        let r = opened.map_err(End::Failed).and_then(|body| {
            let mut m = self.m.take().ok_or(End::Closed)?;
            let r = self.on_record(&mut m, &body, now);
            self.m = Some(m);
            r
        });
        if let Err(end) = r {
            if let Some(m) = self.m.as_mut() {
                let (code, why) = match &end {
                    End::Local(why) if why.contains("already exists") => (StopCode::EXISTS, why.clone()),
                    End::Local(why) => (StopCode::LOCAL_IO, why.clone()),
                    End::Failed(e) => (StopCode::PEER_VIOLATION, e.to_string()),
                    _ => (StopCode::UNSPECIFIED, "stopped".into()),
                };
                m.abort(code, &why);
            }
            self.seal(true);
            self.end = Some(end);
            return;
        }
        let close = self.m.as_ref().is_some_and(Receiver::wants_close);
        self.seal(close);
        if self.m.as_ref().is_some_and(Receiver::is_finished) {
            self.end = Some(End::Done);
        } else if close {
            self.end = Some(End::Local("refused".into()));
        }
    }

    pub(super) fn on_record(&mut self, m: &mut Receiver, pt: &[u8], now: Duration) -> Result<(), End> {
        m.start_record();
        while let Some(ev) = m.poll_event(pt).map_err(End::Failed)? {
            match ev {
                Event::PeerIdentity(id) => self.peer = Some(id),
                Event::Offer(_) if !self.consent_after.is_zero() => self.answer_at = Some(now + self.consent_after),
                Event::Offer(_) if self.consent => m.accept().map_err(End::Failed)?,
                Event::Offer(_) => m.refuse().map_err(End::Failed)?,
                Event::Folder { path, mtime } => {
                    let p = path.components().join("/");
                    match self.out.0.get(&p) {
                        Some(Node::File { .. }) => return Err(End::Local(format!("{p} is a file"))),
                        _ => {
                            self.out.0.insert(p, Node::Dir { mtime });
                        }
                    }
                }
                Event::CheckFile { index, path, size } => {
                    let p = path.components().join("/");
                    let state = match (self.out.0.get(&p), self.partials.get(&p)) {
                        (Some(_), _) if self.keep_existing => FileState::Keep,
                        (Some(Node::File { data, .. }), _) if data.len() as u64 == size => {
                            FileState::Complete { hash: *blake3::hash(data).as_bytes() }
                        }
                        (Some(_), _) if !self.overwrite => return Err(End::Local(format!("{p} already exists"))),
                        (_, Some(part)) if part.len() as u64 <= size => {
                            FileState::Partial { len: part.len() as u64, hash: *blake3::hash(part).as_bytes() }
                        }
                        _ => FileState::Fresh,
                    };
                    m.file_checked(index, state).map_err(End::Failed)?;
                }
                Event::FileStart { entry, path, offset, conflict } => {
                    let p = path.components().join("/");
                    if conflict && !self.overwrite {
                        return Err(End::Local(format!("{p} already exists")));
                    }
                    let part = self.partials.entry(p.clone()).or_default();
                    part.truncate(offset as usize);
                    self.current = Some((p, entry.size));
                }
                Event::Data(range) => {
                    let data = pt.get(range).ok_or(End::Local("range".into()))?;
                    self.append(data)?;
                }
                Event::Compressed { range, size } => {
                    let src = pt.get(range).ok_or(End::Local("range".into()))?;
                    let mut dst = vec![0u8; size as usize];
                    let n = zstd_safe::decompress(&mut dst[..], src).map_err(|_| End::Local("corrupt compressed chunk".into()))?;
                    if n != size as usize {
                        return Err(End::Local("compressed chunk of another size".into()));
                    }
                    self.append(&dst)?;
                }
                Event::FileEnd { hash, executable, mtime } => {
                    let (p, size) = self.current.take().ok_or(End::Local("no file".into()))?;
                    let data = self.partials.remove(&p).unwrap_or_default();
                    if data.len() as u64 != size || hash.is_some_and(|h| *blake3::hash(&data).as_bytes() != h) {
                        return Err(End::Local(format!("integrity check failed for {p}")));
                    }
                    self.out.0.insert(p, Node::File { data, executable, mtime });
                }
                Event::Skipped { .. } => {}
                Event::PartialComplete { entry, path } => {
                    let p = path.components().join("/");
                    let data = self.partials.remove(&p).unwrap_or_default();
                    self.out.0.insert(p, Node::File { data, executable: entry.executable, mtime: entry.mtime });
                }
                Event::StreamData(range) => self.stdout.extend_from_slice(pt.get(range).unwrap_or_default()),
                Event::Text(t) => self.stdout = t,
                Event::StreamEnd => {}
                Event::ManifestDone { .. } => m.ready().map_err(End::Failed)?,
                Event::Done => m.finish().map_err(End::Failed)?,
            }
        }
        Ok(())
    }

    pub(super) fn append(&mut self, data: &[u8]) -> Result<(), End> {
        let (p, size) = self.current.as_ref().ok_or(End::Local("data outside a file".into()))?;
        let part = self.partials.entry(p.clone()).or_default();
        if part.len() as u64 + data.len() as u64 > *size {
            return Err(End::Local("more data than announced".into()));
        }
        part.extend_from_slice(data);
        Ok(())
    }
}
