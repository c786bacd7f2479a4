//! What a room is, as seen by the pages and the API, and the checks a new room must pass.

use super::limits::*;
use super::room_id::RoomId;
use serde::{Deserialize, Serialize};

/// One file offered in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Base name only: no directories, no control characters.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type as the browser reported it; may be empty.
    #[serde(default)]
    pub mime: String,
}

/// What /upload sends to allocate a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoomRequest {
    #[serde(default)]
    pub title: Option<String>,
    pub files: Vec<FileEntry>,
    /// The content's piece size and Merkle root, hashed by the sender's browser. Without
    /// it the room lists files but cannot be downloaded.
    #[serde(default)]
    pub manifest: Option<RoomManifest>,
}

/// What the server keeps of a room's content: 36 bytes, whatever its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomManifest {
    pub piece_size: u32,
    /// Merkle root of the piece hashes, 64 hex digits.
    pub root: String,
}

impl RoomManifest {
    /// The root as bytes; `None` unless it is 64 hex digits.
    pub fn root_hash(&self) -> Option<super::manifest::Hash> {
        super::manifest::from_hex(&self.root)
    }

    /// The piece layout for these files.
    pub fn layout(&self, files: &[FileEntry]) -> Result<super::manifest::Layout, InvalidRoom> {
        super::manifest::Layout::new(self.piece_size, files.iter().map(|f| f.size).collect())
            .map_err(|e| InvalidRoom::BadManifest(e.to_string()))
    }
}

/// What the server answers to a new room: the id and the creator's ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRoom {
    pub id: RoomId,
    /// Signed room ticket (JWT) that lets the holder join the room's swarm.
    pub ticket: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A ticket to join an existing room's swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomTicket {
    pub ticket: String,
    /// Unix seconds; the ticket is refused after this.
    pub expires_at: i64,
}

/// A room as the room page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    pub id: RoomId,
    pub title: Option<String>,
    pub files: Vec<FileEntry>,
    /// Present when the sender hashed the files (every room made by the upload page).
    pub manifest: Option<RoomManifest>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// One of the signed-in user's rooms, as `/rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedRoom {
    pub id: RoomId,
    pub title: Option<String>,
    pub files: Vec<FileEntry>,
    pub total_size: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// The owner closed it: the link answers 410 Gone until the room is purged.
    pub revoked: bool,
    /// Peers that reported a finished download (one count per ticket).
    pub completed: u64,
    /// Peers connected to the room's swarm right now.
    pub online: u64,
}

impl RoomView {
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Why a create_room request was refused. The text is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRoom {
    #[error("a room needs at least one file")]
    NoFiles,
    #[error("a room holds at most {MAX_FILES_PER_ROOM} files, this one has {0}")]
    TooManyFiles(usize),
    #[error("file {index}: the name is empty")]
    EmptyName { index: usize },
    #[error("file {index}: the name is {len} bytes long, the limit is {MAX_FILE_NAME_BYTES}")]
    NameTooLong { index: usize, len: usize },
    #[error("file {index}: the name may not contain '/' or '\\'")]
    NameHasSeparator { index: usize },
    #[error("file {index}: the name may not contain control characters")]
    NameHasControl { index: usize },
    #[error("file {index}: '.' and '..' are not file names")]
    NameIsDots { index: usize },
    #[error("file {index}: {size} bytes is larger than the {MAX_FILE_BYTES}-byte limit")]
    FileTooLarge { index: usize, size: u64 },
    #[error("the files add up to more than the {MAX_ROOM_BYTES}-byte limit")]
    RoomTooLarge,
    #[error(
        "file {index}: the MIME type is longer than {MAX_MIME_BYTES} bytes or has control characters"
    )]
    BadMime { index: usize },
    #[error("the title is longer than {MAX_TITLE_BYTES} bytes or has control characters")]
    BadTitle,
    #[error("the manifest is not valid: {0}")]
    BadManifest(String),
}

impl CreateRoomRequest {
    /// Checks every limit; the first problem found is reported.
    pub fn validate(&self) -> Result<(), InvalidRoom> {
        if self.files.is_empty() {
            return Err(InvalidRoom::NoFiles);
        }
        if self.files.len() > MAX_FILES_PER_ROOM {
            return Err(InvalidRoom::TooManyFiles(self.files.len()));
        }
        if let Some(title) = &self.title {
            clean_title(title)?;
        }
        let mut total: u64 = 0;
        for (index, file) in self.files.iter().enumerate() {
            validate_name(index, &file.name)?;
            if file.mime.len() > MAX_MIME_BYTES || file.mime.chars().any(char::is_control) {
                return Err(InvalidRoom::BadMime { index });
            }
            if file.size > MAX_FILE_BYTES {
                return Err(InvalidRoom::FileTooLarge {
                    index,
                    size: file.size,
                });
            }
            total = total.saturating_add(file.size);
        }
        if total > MAX_ROOM_BYTES {
            return Err(InvalidRoom::RoomTooLarge);
        }
        if let Some(manifest) = &self.manifest {
            if manifest.root_hash().is_none() {
                return Err(InvalidRoom::BadManifest(
                    "the root must be 64 hex digits".into(),
                ));
            }
            manifest.layout(&self.files)?;
        }
        Ok(())
    }

    /// The title with surrounding blanks removed; an empty title counts as none.
    pub fn clean_title(&self) -> Option<String> {
        clean_title(self.title.as_deref()?).ok().flatten()
    }
}

/// A room title as stored: within the limit, no control characters, surrounding blanks
/// removed; an empty title counts as none.
pub fn clean_title(title: &str) -> Result<Option<String>, InvalidRoom> {
    if title.len() > MAX_TITLE_BYTES || title.chars().any(char::is_control) {
        return Err(InvalidRoom::BadTitle);
    }
    let t = title.trim();
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

fn validate_name(index: usize, name: &str) -> Result<(), InvalidRoom> {
    if name.is_empty() {
        return Err(InvalidRoom::EmptyName { index });
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(InvalidRoom::NameTooLong {
            index,
            len: name.len(),
        });
    }
    if name.contains(['/', '\\']) {
        return Err(InvalidRoom::NameHasSeparator { index });
    }
    if name.chars().any(char::is_control) {
        return Err(InvalidRoom::NameHasControl { index });
    }
    if name == "." || name == ".." {
        return Err(InvalidRoom::NameIsDots { index });
    }
    Ok(())
}

/// "1.5 MiB"-style size for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> FileEntry {
        FileEntry {
            name: name.into(),
            size,
            mime: "text/plain".into(),
        }
    }

    fn req(files: Vec<FileEntry>) -> CreateRoomRequest {
        CreateRoomRequest {
            title: None,
            files,
            manifest: None,
        }
    }

    #[test]
    fn accepts_ordinary_rooms() {
        assert_eq!(
            req(vec![file("report.pdf", 10), file("empty.txt", 0)]).validate(),
            Ok(())
        );
        assert_eq!(
            req(vec![file("ünïcödé 文件.bin", MAX_FILE_BYTES)]).validate(),
            Ok(())
        );
        assert_eq!(
            req(vec![file(&"a".repeat(MAX_FILE_NAME_BYTES), 1)]).validate(),
            Ok(())
        );
    }

    #[test]
    fn rejects_each_bad_input_with_its_reason() {
        assert_eq!(req(vec![]).validate(), Err(InvalidRoom::NoFiles));
        let many = vec![file("a", 1); MAX_FILES_PER_ROOM + 1];
        assert_eq!(
            req(many).validate(),
            Err(InvalidRoom::TooManyFiles(MAX_FILES_PER_ROOM + 1))
        );
        assert_eq!(
            req(vec![file("", 1)]).validate(),
            Err(InvalidRoom::EmptyName { index: 0 })
        );
        let long = "é".repeat(128); // 256 bytes, 128 characters
        assert_eq!(
            req(vec![file("ok", 1), file(&long, 1)]).validate(),
            Err(InvalidRoom::NameTooLong { index: 1, len: 256 })
        );
        for bad in ["a/b", "..\\x", "/etc/passwd"] {
            assert_eq!(
                req(vec![file(bad, 1)]).validate(),
                Err(InvalidRoom::NameHasSeparator { index: 0 })
            );
        }
        for bad in ["a\nb", "nul\0", "tab\t", "del\u{7f}"] {
            assert_eq!(
                req(vec![file(bad, 1)]).validate(),
                Err(InvalidRoom::NameHasControl { index: 0 })
            );
        }
        assert_eq!(
            req(vec![file("..", 1)]).validate(),
            Err(InvalidRoom::NameIsDots { index: 0 })
        );
        assert_eq!(
            req(vec![file("huge", MAX_FILE_BYTES + 1)]).validate(),
            Err(InvalidRoom::FileTooLarge {
                index: 0,
                size: MAX_FILE_BYTES + 1
            })
        );
        let five = vec![file("t", MAX_FILE_BYTES); 5];
        assert_eq!(req(five).validate(), Err(InvalidRoom::RoomTooLarge));
        let mut bad_mime = file("x", 1);
        bad_mime.mime = "text/\nplain".into();
        assert_eq!(
            req(vec![bad_mime]).validate(),
            Err(InvalidRoom::BadMime { index: 0 })
        );
        let titled = CreateRoomRequest {
            title: Some("x".repeat(MAX_TITLE_BYTES + 1)),
            files: vec![file("a", 1)],
            manifest: None,
        };
        assert_eq!(titled.validate(), Err(InvalidRoom::BadTitle));
        let with = |piece_size: u32, root: &str| {
            CreateRoomRequest {
                title: None,
                files: vec![file("a", 10 << 20)],
                manifest: Some(RoomManifest {
                    piece_size,
                    root: root.into(),
                }),
            }
            .validate()
        };
        let root = "ab".repeat(32);
        assert_eq!(with(256 * 1024, &root), Ok(()));
        assert!(matches!(
            with(256 * 1024, "abc"),
            Err(InvalidRoom::BadManifest(_))
        ));
        assert!(matches!(
            with(300_000, &root),
            Err(InvalidRoom::BadManifest(_))
        ));
        assert!(matches!(
            with(1 << 30, &root),
            Err(InvalidRoom::BadManifest(_))
        ));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(64 << 20), "64.0 MiB");
    }

    #[test]
    fn negative_sizes_do_not_deserialize() {
        let json = r#"{"files":[{"name":"a","size":-1,"mime":""}]}"#;
        assert!(serde_json::from_str::<CreateRoomRequest>(json).is_err());
    }
}

/// "2026-11-29 07:13 UTC" from Unix seconds, without a date library.
pub fn utc_datetime(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn formats_known_instants() {
        assert_eq!(super::utc_datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc_datetime(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::utc_datetime(1_795_331_634), "2026-11-22 07:13 UTC");
    }
}
