//! What this CPU can do for integer convolutions, read from `/proc/cpuinfo`: the model, the
//! instruction sets that matter to ONNX Runtime's int8 kernels and to libtorch's bf16 path, and
//! which integer arithmetic the fast model's int8 bundle will run with (see `stylegram_onnx::u8s8`).
use std::fmt;
use std::sync::OnceLock;

/// The instruction sets that decide how int8 and bf16 work runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// `model name` from `/proc/cpuinfo` ("unknown" when it cannot be read).
    pub model: String,
    /// AVX2 (MLAS's u8 × s8 kernels with 16-bit pair sums).
    pub avx2: bool,
    /// FMA.
    pub fma: bool,
    /// AVX-512 Foundation.
    pub avx512f: bool,
    /// AVX-512 VNNI (exact u8 × s8 dot products into i32).
    pub avx512_vnni: bool,
    /// AVX-VNNI (the same on 256-bit registers).
    pub avx_vnni: bool,
    /// AVX-512 BF16 (libtorch's bf16 convolutions in quality mode).
    pub avx512_bf16: bool,
    /// AMX tiles for int8.
    pub amx_int8: bool,
    /// AMX tiles for bf16.
    pub amx_bf16: bool,
}

impl CpuFeatures {
    /// This machine's CPU (`/proc/cpuinfo` is read once per process).
    pub fn detect() -> CpuFeatures {
        static DETECTED: OnceLock<CpuFeatures> = OnceLock::new();
        DETECTED
            .get_or_init(|| {
                std::fs::read_to_string("/proc/cpuinfo")
                    .map(|text| CpuFeatures::parse(&text))
                    .unwrap_or_else(|_| CpuFeatures {
                        model: "unknown".into(),
                        ..CpuFeatures::default()
                    })
            })
            .clone()
    }

    /// The first processor's entry of a `/proc/cpuinfo` text.
    pub fn parse(cpuinfo: &str) -> CpuFeatures {
        let field = |key: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        };
        let flags = field("flags").unwrap_or_default();
        let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
        CpuFeatures {
            model: field("model name").unwrap_or_else(|| "unknown".into()),
            avx2: has("avx2"),
            fma: has("fma"),
            avx512f: has("avx512f"),
            avx512_vnni: has("avx512_vnni"),
            avx_vnni: has("avx_vnni"),
            avx512_bf16: has("avx512_bf16"),
            amx_int8: has("amx_int8"),
            amx_bf16: has("amx_bf16"),
        }
    }

    /// Whether u8 × s8 dot products go straight into i32 (VNNI or AMX): exact even with 8-bit
    /// weights. Without it, pairs are summed in a saturating i16 first.
    pub fn exact_int8_dot(&self) -> bool {
        self.avx512_vnni || self.avx_vnni || self.amx_int8
    }

    /// The instruction sets found, e.g. "AVX2 FMA AVX-512F AVX-512-VNNI".
    pub fn instruction_sets(&self) -> String {
        let named = [
            (self.avx2, "AVX2"),
            (self.fma, "FMA"),
            (self.avx512f, "AVX-512F"),
            (self.avx512_vnni, "AVX-512-VNNI"),
            (self.avx_vnni, "AVX-VNNI"),
            (self.avx512_bf16, "AVX-512-BF16"),
            (self.amx_int8, "AMX-INT8"),
            (self.amx_bf16, "AMX-BF16"),
        ];
        let found: Vec<&str> = named
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        if found.is_empty() {
            "none of AVX2, AVX-512, VNNI, AMX".into()
        } else {
            found.join(" ")
        }
    }

    /// How int8 convolutions add up on this CPU, in words.
    pub fn int8_arithmetic(&self) -> &'static str {
        if self.exact_int8_dot() {
            "u8×s8 dot products into i32 (VNNI/AMX)"
        } else {
            "u8×s8 pairs summed in saturating i16, no VNNI (7-bit weights needed)"
        }
    }
}

impl fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.model, self.instruction_sets())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPYC: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_1 avx avx2 fma bmi2\n\nprocessor\t: 1\n";
    const XEON: &str = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n";

    #[test]
    fn reads_model_and_flags() {
        let epyc = CpuFeatures::parse(EPYC);
        assert_eq!(epyc.model, "AMD EPYC 7B13");
        assert!(epyc.avx2 && epyc.fma && !epyc.avx512f);
        assert!(!epyc.exact_int8_dot());
        assert_eq!(epyc.instruction_sets(), "AVX2 FMA");
        let xeon = CpuFeatures::parse(XEON);
        assert!(xeon.exact_int8_dot() && xeon.avx512_bf16 && xeon.amx_int8);
        assert!(
            xeon.to_string()
                .starts_with("Intel(R) Xeon(R) Processor: AVX2 FMA AVX-512F")
        );
        assert_eq!(CpuFeatures::parse("").model, "unknown");
    }
}
