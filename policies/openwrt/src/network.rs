//! Stand-in until the network config reader lands: `devices` only.

pub struct Networks(Vec<(String, Vec<String>)>);

impl Networks {
    pub fn from_config(
        _network_uci: Option<&str>,
        devices: Option<&str>,
    ) -> Result<Networks, crate::error::Error> {
        let mut out = Vec::new();
        for entry in devices.unwrap_or("").split_whitespace() {
            if let Some((n, d)) = entry.split_once('=') {
                out.push((n.to_string(), d.split(',').map(str::to_string).collect()));
            }
        }
        Ok(Networks(out))
    }

    pub fn devices(&self, name: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_slice())
    }
}
