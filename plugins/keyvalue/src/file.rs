//! The file a store is kept in with `path:`.
//!
//! Its layout: the line `wasi-keyvalue/1`, then one record per key (a `1`
//! byte; the bucket, the key and the value, each as a little-endian `u32`
//! length and its bytes), then a `0` byte and the number of records as a
//! little-endian `u64`, and nothing after. A file cut short, or with
//! anything else in it, does not load. It is replaced whole, through a
//! temporary file in the same directory renamed over it, so it is always
//! either the old content or the new.

use std::io::Write as _;
use std::path::Path;

use crate::data::Data;

/// The first line of every file.
const MAGIC: &[u8] = b"wasi-keyvalue/1\n";

/// The bytes of `data`'s file.
pub(crate) fn encode(data: &Data) -> Vec<u8> {
    let (keys, bytes) = data.usage();
    let mut out = Vec::with_capacity(MAGIC.len() + bytes as usize + keys as usize * 13 + 9);
    out.extend_from_slice(MAGIC);
    let put = |out: &mut Vec<u8>, field: &[u8]| {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field);
    };
    let mut count = 0_u64;
    for (bucket, key, value) in data.entries() {
        out.push(1);
        put(&mut out, bucket.as_bytes());
        put(&mut out, key.as_bytes());
        put(&mut out, value);
        count += 1;
    }
    out.push(0);
    out.extend_from_slice(&count.to_le_bytes());
    out
}

/// Reads a file's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("cut short at byte {}", self.bytes.len()));
        };
        let field = &self.bytes[self.at..end];
        self.at = end;
        Ok(field)
    }

    fn field(&mut self) -> Result<&'a [u8], String> {
        let len = self.take(4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        self.take(len as usize)
    }

    fn text(&mut self, what: &str) -> Result<&'a str, String> {
        let at = self.at;
        let field = self.field()?;
        std::str::from_utf8(field).map_err(|_| format!("the {what} at byte {at} is not UTF-8"))
    }
}

/// The store in a file's bytes.
///
/// # Errors
///
/// What is wrong with them, and where.
pub(crate) fn decode(bytes: &[u8]) -> Result<Data, String> {
    if !bytes.starts_with(MAGIC) {
        return Err("not a keyvalue file (it does not start with `wasi-keyvalue/1`)".into());
    }
    let mut r = Reader {
        bytes,
        at: MAGIC.len(),
    };
    let mut data = Data::default();
    let mut count = 0_u64;
    loop {
        let at = r.at;
        match r.take(1)?[0] {
            0 => break,
            1 => {}
            other => return Err(format!("unknown record type {other} at byte {at}")),
        }
        let bucket = r.text("bucket name")?;
        let key = r.text("key")?;
        if data.get(bucket, key).is_some() {
            return Err(format!("key `{key}` of bucket `{bucket}` is there twice"));
        }
        let value = r.field()?;
        data.put(bucket, key.to_string(), value.to_vec());
        count += 1;
    }
    let stated = r.take(8)?;
    let stated = u64::from_le_bytes(stated.try_into().unwrap_or_default());
    if stated != count {
        return Err(format!("it says {stated} keys but holds {count}"));
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes follow its end", bytes.len() - r.at));
    }
    data.version = 0;
    Ok(data)
}

/// The store kept in `path`: empty when there is no such file yet (or an
/// empty one), provided its directory exists.
///
/// # Errors
///
/// The file cannot be read or is not a keyvalue file, or its directory
/// does not exist; the message names the file.
pub(crate) fn load(path: &Path) -> Result<Data, String> {
    let shown = path.display();
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => Ok(Data::default()),
        Ok(bytes) => decode(&bytes).map_err(|why| format!("cannot load {shown}: {why}")),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let dir = parent(path);
            if dir.is_dir() {
                Ok(Data::default())
            } else {
                Err(format!(
                    "cannot keep {shown}: directory {} does not exist",
                    dir.display()
                ))
            }
        }
        Err(err) => Err(format!("cannot read {shown}: {err}")),
    }
}

/// Replaces `path` with `bytes`, written and synced to a temporary file in
/// its directory first; the directory is synced after the rename. The file
/// keeps its permissions; a new one gets those of any new file (`0666` less
/// the umask).
pub(crate) fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".keyvalue-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|err| err.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The directory `path` is in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Limits;

    fn sample() -> Data {
        let mut d = Data::default();
        let l = Limits::default();
        d.set(&l, "a", "k", b"one".to_vec()).unwrap();
        d.set(&l, "a", "empty", Vec::new()).unwrap();
        d.set(&l, "b:x", "k", (0..=255).collect()).unwrap();
        d
    }

    #[test]
    fn a_saved_store_loads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        assert_eq!(load(&path).unwrap().usage(), (0, 0), "no file yet: empty");
        save(&path, &encode(&sample())).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.usage(), sample().usage());
        assert_eq!(back.get("a", "k"), Some(&b"one"[..]));
        assert_eq!(back.get("a", "empty"), Some(&b""[..]));
        assert_eq!(back.get("b:x", "k").map(<[u8]>::len), Some(256));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["kv.db"], "no temporary file is left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::Permissions::from_mode(0o640);
            std::fs::set_permissions(&path, mode).unwrap();
            save(&path, &encode(&back)).unwrap();
            let kept = path.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(kept, 0o640, "a saved file keeps its permissions");
        }
    }

    #[test]
    fn corrupt_files_are_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let good = encode(&sample());
        let cases: [(&[u8], &str); 4] = [
            (b"{\"json\": true}", "not a keyvalue file"),
            (&good[..good.len() - 3], "cut short"),
            (&[good.as_slice(), b"x"].concat(), "1 bytes follow its end"),
            (&[MAGIC, &[7]].concat(), "unknown record type 7"),
        ];
        for (bytes, why) in cases {
            std::fs::write(&path, bytes).unwrap();
            let err = load(&path).unwrap_err();
            assert!(
                err.starts_with(&format!("cannot load {}: ", path.display())),
                "{err}"
            );
            assert!(err.contains(why), "{err}");
        }
        let missing_dir = dir.path().join("nope/kv.db");
        assert!(load(&missing_dir).unwrap_err().contains("does not exist"));
        std::fs::create_dir(dir.path().join("adir")).unwrap();
        let err = load(&dir.path().join("adir")).unwrap_err();
        assert!(err.starts_with("cannot read "), "{err}");
    }
}
