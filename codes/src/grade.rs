//! The credit grade printed on a code.

/// A merchant's credit grade. Ordered from best to worst, so `max` of two
/// grades is the worse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Grade {
    /// 良好: no adverse finding in force.
    Green,
    /// 关注: something to watch.
    Yellow,
    /// 重点监管: under close supervision.
    Red,
}

impl Grade {
    /// All grades, best first.
    pub const ALL: [Grade; 3] = [Grade::Green, Grade::Yellow, Grade::Red];

    /// The API name: `green`, `yellow` or `red`.
    pub fn name(self) -> &'static str {
        match self {
            Grade::Green => "green",
            Grade::Yellow => "yellow",
            Grade::Red => "red",
        }
    }

    /// Parses an API name.
    pub fn from_name(name: &str) -> Option<Grade> {
        match name {
            "green" => Some(Grade::Green),
            "yellow" => Some(Grade::Yellow),
            "red" => Some(Grade::Red),
            _ => None,
        }
    }

    /// The one-byte form used in the signed payload.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// Parses the one-byte payload form.
    pub fn from_byte(b: u8) -> Option<Grade> {
        Grade::ALL.get(b as usize).copied()
    }

    /// The Chinese label shown to people: the colour and its meaning, so the
    /// grade never depends on colour alone.
    pub fn label_zh(self) -> &'static str {
        match self {
            Grade::Green => "绿码 良好",
            Grade::Yellow => "黄码 关注",
            Grade::Red => "红码 重点监管",
        }
    }

    /// The bright colour of the grade (frames, banners), as `#rrggbb`.
    pub fn colour(self) -> &'static str {
        match self {
            Grade::Green => "#1e9e4a",
            Grade::Yellow => "#f2b705",
            Grade::Red => "#d7261e",
        }
    }

    /// A dark shade of the grade colour for QR modules, within 10 % of
    /// black in luma (Rec. 601 about 24 of 255), so that a camera's Y plane
    /// sees them as black ink. Lighter shades (luma 54–78: `#0b5d2a`,
    /// `#6b4e00`, `#8a130e`) decoded 1.5 percentage points less often than
    /// black with rxing (ZXing) in degraded phone photos
    /// (`codes/benches/scan_robustness`).
    pub fn dark_colour(self) -> &'static str {
        match self {
            Grade::Green => "#042410",
            Grade::Yellow => "#211800",
            Grade::Red => "#3d0806",
        }
    }
}

impl std::fmt::Display for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
