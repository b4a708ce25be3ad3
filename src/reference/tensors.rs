//! Real weights from a `.safetensors` file (f32, f16 or bf16), as f32.
//!
//! The file is memory-mapped, not read: a tensor is converted when it is asked for (whole, or
//! row by row through [`Weights::rows`]), and [`Weights::release`] hands its pages back, so
//! walking a whole checkpoint one tensor at a time keeps memory near the largest tensor.
//!
//! Every failure is one line that names the file and, where there is one, the tensor: a missing
//! or unreadable file, a file that is not safetensors, a tensor name that is not there (with the
//! names that are, so a typo is easy to see), a dtype this path does not read.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use safetensors::{Dtype, SafeTensors};

/// A tensor converted to f32, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// (rows, cols) of a matrix; a higher-rank tensor is read as rows = first dimension.
    pub fn matrix_dims(&self) -> (usize, usize) {
        let rows = self.shape.first().copied().unwrap_or(1).max(1);
        (rows, self.data.len() / rows)
    }
}

/// A memory-mapped safetensors file.
pub struct Weights {
    path: PathBuf,
    bytes: memmap2::Mmap,
}

impl Weights {
    pub fn open(path: &Path) -> Result<Weights> {
        let file = std::fs::File::open(path).map_err(|e| anyhow!("cannot read weights file {}: {e}", path.display()))?;
        // SAFETY: the map is read-only; like every reader of a checkpoint we assume nobody
        // truncates the file while it is open (that would be a SIGBUS, not a wrong value).
        let bytes = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| anyhow!("{} is not a valid safetensors file: cannot map it: {e}", path.display()))?;
        SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow!("{} is not a valid safetensors file: {e}", path.display()))?;
        Ok(Weights { path: path.to_path_buf(), bytes })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shape of a tensor, if it exists.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.parsed().tensor(name).ok().map(|t| t.shape().to_vec())
    }

    /// A float matrix read row by row straight from the map (rows = first dimension). Errors
    /// as [`Weights::tensor`] does, and for a tensor of rank < 2.
    pub fn rows(&self, name: &str) -> Result<TensorRows<'_>> {
        let st = self.parsed();
        let Ok(view) = st.tensor(name) else { return Err(self.tensor(name).unwrap_err()) };
        let dtype = view.dtype();
        if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(self.tensor(name).unwrap_err());
        }
        let shape = view.shape().to_vec();
        if shape.len() < 2 {
            bail!("tensor '{name}' in {} has shape {shape:?}, expected a matrix (rank >= 2)", self.path.display());
        }
        let rows = shape[0];
        let cols = shape[1..].iter().product();
        let off = view.data().as_ptr() as usize - self.bytes.as_ptr() as usize;
        let bytes = &self.bytes[off..off + view.data().len()];
        Ok(TensorRows { name: name.to_string(), shape, dtype, bytes, rows, cols })
    }

    /// Drops the mapped pages of a tensor from memory (they are read again if touched).
    pub fn release(&self, name: &str) {
        if let Ok(view) = self.parsed().tensor(name) {
            let off = view.data().as_ptr() as usize - self.bytes.as_ptr() as usize;
            // SAFETY: a private read-only file map: dropped pages are re-read from the file.
            let _ = unsafe { self.bytes.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off, view.data().len()) };
        }
    }

    fn parsed(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("validated in open")
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.parsed().names().into_iter().map(String::from).collect();
        n.sort();
        n
    }

    /// True if the tensor's dtype is one `tensor` converts.
    pub fn is_float(&self, name: &str) -> bool {
        self.parsed().tensor(name).is_ok_and(|t| matches!(t.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16))
    }

    /// One tensor as f32. Errors name the file and the tensor.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let st = self.parsed();
        let Ok(view) = st.tensor(name) else {
            let names = self.names();
            let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
            let more = if names.len() > 8 { format!(", ... ({} in all)", names.len()) } else { String::new() };
            bail!(
                "tensor '{name}' not found in {} (it has: {}{more})",
                self.path.display(),
                shown.join(", ")
            );
        };
        let mut data = Vec::new();
        if !convert(view.dtype(), view.data(), &mut data) {
            bail!(
                "tensor '{name}' in {} has dtype {:?}, which is not supported (use F32, F16 or BF16)",
                self.path.display(),
                view.dtype()
            );
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            bail!("tensor '{name}' in {} has a non-finite value at element {i}", self.path.display());
        }
        Ok(Tensor { name: name.to_string(), shape: view.shape().to_vec(), data })
    }
}

/// Appends little-endian `raw` of `dtype` to `out` as f32; false for a dtype that is not
/// F32, F16 or BF16.
fn convert(dtype: Dtype, raw: &[u8], out: &mut Vec<f32>) -> bool {
    match dtype {
        Dtype::F32 => out.extend(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        Dtype::F16 => out.extend(raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())),
        Dtype::BF16 => out.extend(raw.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        _ => return false,
    }
    true
}

/// A float matrix in a mapped checkpoint, converted to f32 one row at a time.
pub struct TensorRows<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    dtype: Dtype,
    bytes: &'a [u8],
    rows: usize,
    cols: usize,
}

impl crate::reference::quant::Rows for TensorRows<'_> {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn row<'a>(&'a self, r: usize, buf: &'a mut Vec<f32>) -> &'a [f32] {
        let size = if self.dtype == Dtype::F32 { 4 } else { 2 };
        buf.clear();
        convert(self.dtype, &self.bytes[r * self.cols * size..(r + 1) * self.cols * size], buf);
        buf
    }
}

/// Writes f32 tensors to a safetensors file as `dtype` (F32, F16 or BF16): used by the tests and
/// handy for making small fixtures.
pub fn write(path: &Path, tensors: &[Tensor], dtype: Dtype) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| match dtype {
            Dtype::F32 => Ok(t.data.iter().flat_map(|v| v.to_le_bytes()).collect()),
            Dtype::F16 => Ok(t.data.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect()),
            Dtype::BF16 => Ok(t.data.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect()),
            other => Err(anyhow!("cannot write dtype {other:?}")),
        })
        .collect::<Result<_>>()?;
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| Ok((t.name.clone(), safetensors::tensor::TensorView::new(dtype, t.shape.clone(), b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let out = safetensors::serialize(views, None)?;
    std::fs::write(path, out).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Tensor> {
        vec![
            Tensor { name: "model.layers.0.mlp.up_proj.weight".into(), shape: vec![3, 4], data: (0..12).map(|i| i as f32 * 0.25 - 1.0).collect() },
            Tensor { name: "norm".into(), shape: vec![4], data: vec![1.0, 2.0, 0.5, -3.0] },
        ]
    }

    #[test]
    fn round_trip_f32_f16_bf16() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
            let p = dir.path().join(format!("w_{dtype:?}.safetensors"));
            write(&p, &sample(), dtype).unwrap();
            let w = Weights::open(&p).unwrap();
            assert_eq!(w.names(), vec!["model.layers.0.mlp.up_proj.weight".to_string(), "norm".to_string()]);
            // Every sample value is exact in f16 and bf16.
            for t in sample() {
                assert_eq!(w.tensor(&t.name).unwrap(), t, "{dtype:?}");
            }
            // Row by row from the map: the same values.
            use crate::reference::quant::Rows;
            let m = w.rows("model.layers.0.mlp.up_proj.weight").unwrap();
            assert_eq!(m.shape(), (3, 4));
            let rows: Vec<f32> = (0..3).flat_map(|r| m.row(r, &mut Vec::new()).to_vec()).collect();
            assert_eq!(rows, sample()[0].data, "{dtype:?}");
            w.release("model.layers.0.mlp.up_proj.weight");
            assert_eq!(w.tensor("model.layers.0.mlp.up_proj.weight").unwrap(), sample()[0], "{dtype:?} after release");
        }
    }

    #[test]
    fn bad_inputs_are_one_clear_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.safetensors");
        let e = format!("{:#}", Weights::open(&missing).err().unwrap());
        assert!(e.starts_with("cannot read weights file") && e.contains("nope.safetensors"), "{e}");

        let corrupt = dir.path().join("bad.safetensors");
        std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
        let e = format!("{:#}", Weights::open(&corrupt).err().unwrap());
        assert!(e.contains("bad.safetensors is not a valid safetensors file"), "{e}");

        let p = dir.path().join("ok.safetensors");
        write(&p, &sample(), Dtype::F32).unwrap();
        let w = Weights::open(&p).unwrap();
        let e = format!("{:#}", w.tensor("q_proj").unwrap_err());
        assert!(e.starts_with("tensor 'q_proj' not found in") && e.contains("(it has: model.layers.0"), "{e}");

        let ints = dir.path().join("ints.safetensors");
        let data = [1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        let view = safetensors::tensor::TensorView::new(Dtype::I32, vec![2], &data).unwrap();
        std::fs::write(&ints, safetensors::serialize([("ids", view)], None).unwrap()).unwrap();
        let e = format!("{:#}", Weights::open(&ints).unwrap().tensor("ids").unwrap_err());
        assert!(e.contains("tensor 'ids'") && e.contains("dtype I32, which is not supported"), "{e}");
        assert!(!e.contains('\n'));
    }
}
