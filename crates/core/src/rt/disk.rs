//! The disk seam. Local state (the WAL's local backend, caches) is written through
//! [`Disk`], never through `std::fs` directly, so that the simulator can crash it.
//!
//! * [`StdDisk`] is the real thing: std files with explicit fsync.
//! * [`SimDisk`] keeps bytes in memory and models power loss the way TigerBeetle's
//!   storage faults do: on [`SimDisk::crash`], every byte that was not synced is lost,
//!   and the last unsynced write of a file may survive only partially (a torn write).
//!   [`SimDisk::power_cut_after`] cuts the power in the middle of a later operation,
//!   which tears that very write and fails every operation until the node restarts.
//!
//! Metadata model of the simulated disk (documented because it is a choice): a newly
//! created file is durable once it or its directory is synced; removals and renames
//! are durable at once.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Rng;

/// A file opened through the disk seam. Writes are appends or truncations; reads see
/// everything written so far (synced or not), as with a real page cache.
pub trait DiskFile: Send + Sync + fmt::Debug {
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    fn read_all(&self) -> io::Result<Vec<u8>>;
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Makes everything written so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
}

/// A local file system as the storage code sees it.
pub trait Disk: Send + Sync + fmt::Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) directly inside `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Opens for reading and appending, creating the file when `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn DiskFile>>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Removes the empty directory `dir` (an error if it still holds files).
    fn remove_dir(&self, dir: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes creations in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Writes a whole small file atomically and durably (write temp, sync, rename, sync dir).
    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        if self.exists(&tmp)? {
            self.remove(&tmp)?;
        }
        let mut f = self.open(&tmp, true)?;
        f.append(data)?;
        f.sync()?;
        drop(f);
        self.rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            self.sync_dir(dir)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Real disk
// ---------------------------------------------------------------------------------------

/// The real local file system.
#[derive(Debug, Default, Clone)]
pub struct StdDisk;

#[derive(Debug)]
struct StdFile {
    file: std::fs::File,
}

impl DiskFile for StdFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn read_all(&self) -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = &self.file;
        f.seek(SeekFrom::Start(0))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(buf)
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        self.file.write_all(data)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl Disk for StdDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn DiskFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(create)
            .open(path)?;
        Ok(Box::new(StdFile { file }))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

// ---------------------------------------------------------------------------------------
// Simulated disk
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct SimFile {
    /// What survives power loss.
    durable: Vec<u8>,
    /// What readers see now.
    current: Vec<u8>,
    /// Whether the file itself (its directory entry) survives power loss.
    durable_entry: bool,
}

#[derive(Debug, Default)]
struct SimState {
    files: BTreeMap<PathBuf, SimFile>,
    /// Bumped on every crash; handles from an earlier incarnation stop working.
    generation: u64,
    /// Remaining mutating operations before the power goes; `None` = never.
    power_cut_in: Option<u64>,
    /// The power is off: every operation fails until [`SimDisk::crash`].
    powered_off: bool,
    rng: Option<Rng>,
    stats: SimDiskStats,
}

/// Counters for reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SimDiskStats {
    pub crashes: u64,
    pub torn_writes: u64,
    pub bytes_lost: u64,
    pub syncs: u64,
}

/// An in-memory disk that loses unsynced bytes on a crash. Clones share the same disk,
/// so a harness can keep one outside a simulated node and hand it in on each restart.
#[derive(Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SimDisk")
            .field("files", &s.files.len())
            .field("generation", &s.generation)
            .finish()
    }
}

fn powered_off() -> io::Error {
    io::Error::other("simulated power loss")
}

fn stale_handle() -> io::Error {
    io::Error::other("file handle from before a simulated crash")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl SimDisk {
    /// A fresh disk whose tear decisions are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let d = SimDisk::default();
        d.lock().rng = Some(Rng::seed_from_u64(seed));
        d
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        // A panic while holding the lock poisons it; the state is still consistent
        // (every mutation is a single assignment), so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts the power during the `n`-th mutating operation from now (append, truncate,
    /// sync, remove, rename; 0 = the next one). That operation tears and fails, and so
    /// does everything after it until [`SimDisk::crash`] is called.
    pub fn power_cut_after(&self, n: u64) {
        self.lock().power_cut_in = Some(n);
    }

    /// Whether the power is currently off.
    pub fn is_powered_off(&self) -> bool {
        self.lock().powered_off
    }

    /// Power loss and reboot: unsynced bytes are lost, except that a prefix of them
    /// may survive, cut anywhere (a torn write). Open handles go stale.
    pub fn crash(&self) {
        let mut s = self.lock();
        let mut rng = s.rng.take().unwrap_or_else(Rng::from_entropy);
        let mut stats = s.stats;
        stats.crashes += 1;
        s.files.retain(|_, f| f.durable_entry);
        for f in s.files.values_mut() {
            let mut survived = f.durable.clone();
            if f.current.len() > f.durable.len() && f.current.starts_with(&f.durable) {
                // The tail beyond `durable` was never synced: all of it, none of it, or
                // a prefix cut anywhere (a torn write) may have reached the platter.
                let extra = (f.current.len() - f.durable.len()) as u64;
                let keep = match rng.gen_range(0, 3) {
                    0 => 0,
                    1 => extra,
                    _ => rng.gen_range(0, extra + 1),
                };
                if keep > 0 && keep < extra {
                    stats.torn_writes += 1;
                }
                survived = f.current[..f.durable.len() + keep as usize].to_vec();
            }
            stats.bytes_lost += (f.current.len() as u64).saturating_sub(survived.len() as u64);
            f.durable = survived.clone();
            f.current = survived;
        }
        s.generation += 1;
        s.powered_off = false;
        s.power_cut_in = None;
        s.stats = stats;
        s.rng = Some(rng);
    }

    pub fn stats(&self) -> SimDiskStats {
        self.lock().stats
    }

    /// Called before every mutating operation: fails if the power is off, or cuts it
    /// now if the countdown says so (returning `Ok(true)` = tear this write and fail).
    fn before_mutation(s: &mut SimState) -> io::Result<bool> {
        if s.powered_off {
            return Err(powered_off());
        }
        if let Some(n) = s.power_cut_in {
            if n == 0 {
                s.powered_off = true;
                s.power_cut_in = None;
                return Ok(true);
            }
            s.power_cut_in = Some(n - 1);
        }
        Ok(false)
    }
}

#[derive(Debug)]
struct SimHandle {
    disk: SimDisk,
    path: PathBuf,
    generation: u64,
}

impl SimHandle {
    fn with_file<R>(
        &self,
        mutate: bool,
        f: impl FnOnce(&mut SimFile, bool, &mut SimState) -> R,
    ) -> io::Result<R> {
        let mut s = self.disk.lock();
        if s.generation != self.generation {
            return Err(stale_handle());
        }
        let cut = if mutate {
            SimDisk::before_mutation(&mut s)?
        } else if s.powered_off {
            return Err(powered_off());
        } else {
            false
        };
        let mut file = s
            .files
            .remove(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        let r = f(&mut file, cut, &mut s);
        s.files.insert(self.path.clone(), file);
        if cut {
            return Err(powered_off());
        }
        Ok(r)
    }
}

impl DiskFile for SimHandle {
    fn len(&self) -> io::Result<u64> {
        self.with_file(false, |f, _, _| f.current.len() as u64)
    }
    fn read_all(&self) -> io::Result<Vec<u8>> {
        self.with_file(false, |f, _, _| f.current.clone())
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.with_file(true, |f, cut, s| {
            if cut {
                // The power went during this write: some prefix of it reached the page
                // cache; `crash` decides how much of that survives.
                let rng = s.rng.get_or_insert_with(Rng::from_entropy);
                let n = rng.gen_range(0, data.len() as u64 + 1) as usize;
                f.current.extend_from_slice(&data[..n]);
            } else {
                f.current.extend_from_slice(data);
            }
        })
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.with_file(true, |f, cut, _| {
            if !cut {
                f.current.truncate(len as usize);
            }
        })
    }
    fn sync(&mut self) -> io::Result<()> {
        self.with_file(true, |f, cut, s| {
            if !cut {
                f.durable = f.current.clone();
                f.durable_entry = true;
                s.stats.syncs += 1;
            }
        })
    }
}

fn parent_is(path: &Path, dir: &Path) -> bool {
    path.parent() == Some(dir)
}

impl Disk for SimDisk {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        // Directories are implicit in the simulated disk.
        if self.lock().powered_off {
            return Err(powered_off());
        }
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        if s.powered_off {
            return Err(powered_off());
        }
        Ok(s.files
            .keys()
            .filter(|p| parent_is(p, dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        let s = self.lock();
        if s.powered_off {
            return Err(powered_off());
        }
        Ok(s.files.contains_key(path))
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn DiskFile>> {
        let mut s = self.lock();
        if s.powered_off {
            return Err(powered_off());
        }
        if !s.files.contains_key(path) {
            if !create {
                return Err(not_found(path));
            }
            s.files.insert(path.to_path_buf(), SimFile::default());
        }
        Ok(Box::new(SimHandle {
            disk: self.clone(),
            path: path.to_path_buf(),
            generation: s.generation,
        }))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let cut = SimDisk::before_mutation(&mut s)?;
        if cut {
            return Err(powered_off());
        }
        s.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        // Directories are implicit: one exists while it holds files, so removing an
        // empty one only has to check that it is empty.
        let s = self.lock();
        if s.powered_off {
            return Err(powered_off());
        }
        if s.files.keys().any(|p| p.starts_with(dir)) {
            return Err(io::Error::new(
                io::ErrorKind::DirectoryNotEmpty,
                format!("{} is not empty", dir.display()),
            ));
        }
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let cut = SimDisk::before_mutation(&mut s)?;
        if cut {
            return Err(powered_off());
        }
        let mut f = s.files.remove(from).ok_or_else(|| not_found(from))?;
        // Rename is atomic and durable; the file keeps its own durability state.
        f.durable_entry = true;
        s.files.insert(to.to_path_buf(), f);
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let cut = SimDisk::before_mutation(&mut s)?;
        if cut {
            return Err(powered_off());
        }
        for (p, f) in s.files.iter_mut() {
            if parent_is(p, dir) {
                f.durable_entry = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn synced_bytes_survive_a_crash_and_unsynced_ones_may_not() {
        for seed in 0..64 {
            let d = SimDisk::new(seed);
            let mut f = d.open(&p("/w/a"), true).unwrap();
            f.append(b"hello").unwrap();
            f.sync().unwrap();
            f.append(b" world").unwrap();
            d.crash();
            assert!(f.len().is_err(), "stale handle must fail");
            let f = d.open(&p("/w/a"), false).unwrap();
            let got = f.read_all().unwrap();
            assert!(got.starts_with(b"hello"));
            assert!(b"hello world".starts_with(&got[..]));
        }
    }

    #[test]
    fn unsynced_new_file_disappears() {
        let d = SimDisk::new(1);
        let mut f = d.open(&p("/w/new"), true).unwrap();
        f.append(b"x").unwrap();
        d.crash();
        assert!(!d.exists(&p("/w/new")).unwrap());
    }

    #[test]
    fn some_seed_tears_a_write() {
        let mut torn = false;
        for seed in 0..64 {
            let d = SimDisk::new(seed);
            let mut f = d.open(&p("/a"), true).unwrap();
            f.sync().unwrap();
            f.append(b"0123456789").unwrap();
            d.crash();
            let n = d.open(&p("/a"), false).unwrap().len().unwrap();
            torn |= n > 0 && n < 10;
        }
        assert!(torn);
    }

    #[test]
    fn power_cut_fails_the_operation_and_everything_after() {
        let d = SimDisk::new(3);
        let mut f = d.open(&p("/a"), true).unwrap();
        d.power_cut_after(1);
        f.append(b"one").unwrap();
        assert!(f.append(b"two").is_err());
        assert!(f.sync().is_err());
        assert!(d.open(&p("/a"), false).is_err());
        d.crash();
        // The file was never synced, so it is gone.
        assert!(!d.exists(&p("/a")).unwrap());
    }

    #[test]
    fn write_atomic_replaces_whole_content() {
        let d = SimDisk::new(5);
        d.write_atomic(&p("/m/f"), b"v1").unwrap();
        d.write_atomic(&p("/m/f"), b"v2-longer").unwrap();
        d.crash();
        assert_eq!(
            d.open(&p("/m/f"), false).unwrap().read_all().unwrap(),
            b"v2-longer"
        );
    }

    #[test]
    fn std_disk_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let d = StdDisk;
        let path = dir.path().join("f");
        let mut f = d.open(&path, true).unwrap();
        f.append(b"abc").unwrap();
        f.sync().unwrap();
        f.truncate(2).unwrap();
        assert_eq!(f.read_all().unwrap(), b"ab");
        assert_eq!(d.list(dir.path()).unwrap(), vec!["f".to_string()]);
        d.write_atomic(&dir.path().join("g"), b"zz").unwrap();
        assert_eq!(d.list(dir.path()).unwrap(), vec!["f", "g"]);
    }
}
