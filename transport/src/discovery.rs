//! The names of discovery on the wire (`wit/extension/discovery.wit`): what
//! every sdk-built extension serves, what the host and `wrpc-ext` ask.

/// The discovery instance, served by every sdk-built extension.
pub const INSTANCE: &str = "wrpc-ext:extension/discovery@0.1.0";

/// Its function: `describe: func() -> string`, a JSON document.
pub const DESCRIBE: &str = "describe";

/// The function every exported instance also answers, with the same
/// document as `describe`: asking `INSTANCE.wrpc-ext:describe` reaches only
/// extensions serving `INSTANCE` (over NATS, where several extensions share
/// a prefix, the discovery instance itself would be answered by any of
/// them). No WIT function can have this name.
pub const PER_INSTANCE: &str = "wrpc-ext:describe";

/// What an extension (or a host serving exports) says about itself: the
/// JSON document `describe` answers and `GET /describe` serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Document {
    /// Its name (an extension's, or `host` for a host's exports).
    pub name: String,
    /// Its version, if it says.
    #[serde(default)]
    pub version: Option<String>,
    /// The sdk version it was built with, if it was.
    #[serde(
        rename = "sdk-version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sdk_version: Option<String>,
    /// The instances it serves.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// The addresses it listens on.
    #[serde(default)]
    pub listeners: Vec<String>,
    /// The WIT that types them: packages, dependencies first, each a list
    /// of `(file name, contents)`.
    #[serde(default)]
    pub wit: Vec<Vec<(String, String)>>,
}

/// One instance a [`Document`] says is served.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Interface {
    /// `ns:pkg/iface@version`.
    pub instance: String,
    /// `ns:pkg`.
    #[serde(default)]
    pub package: String,
    /// `iface`.
    #[serde(default)]
    pub interface: String,
    /// The version, if any.
    #[serde(default)]
    pub version: Option<String>,
    /// The functions served.
    #[serde(default)]
    pub functions: Vec<String>,
}

impl Interface {
    /// `instance` (`ns:pkg/iface@version`) with its parts, serving `functions`.
    pub fn new(instance: &str, functions: Vec<String>) -> Self {
        let (path, version) = instance
            .split_once('@')
            .map_or((instance, None), |(p, v)| (p, Some(v.to_string())));
        let (package, interface) = path.split_once('/').unwrap_or((path, ""));
        Self {
            instance: instance.to_string(),
            package: package.to_string(),
            interface: interface.to_string(),
            version,
            functions,
        }
    }
}

impl Document {
    /// The document as JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings and lists always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a document.
    ///
    /// # Errors
    ///
    /// What is wrong with `json`, in one line.
    pub fn parse(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    /// The instances it serves.
    pub fn instances(&self) -> impl Iterator<Item = &str> {
        self.interfaces.iter().map(|i| i.instance.as_str())
    }
}
