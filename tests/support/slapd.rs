//! A real OpenLDAP server (Debian's `slapd`) in a temporary folder, on a loopback port,
//! with a small directory: people, groups (with the `memberof` overlay), and a search
//! account. Killed on drop.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldap3::LdapConnAsync;

use super::external;
use super::idp::free_port;

pub const SUFFIX: &str = "dc=example,dc=com";
pub const SEARCH_DN: &str = "cn=ftw,ou=services,dc=example,dc=com";
pub const SEARCH_PASSWORD: &str = "search-secret";

pub struct Slapd {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(dn, [(attribute, [values])])`.
type Entry<'a> = (&'a str, Vec<(&'a str, Vec<&'a str>)>);

fn directory() -> Vec<Entry<'static>> {
    let person = |uid: &'static str, password: &'static str| -> Entry<'static> {
        let dn: &'static str = Box::leak(format!("uid={uid},ou=people,{SUFFIX}").into_boxed_str());
        let mail: &'static str = Box::leak(format!("{uid}@example.com").into_boxed_str());
        (
            dn,
            vec![
                ("objectClass", vec!["inetOrgPerson"]),
                ("uid", vec![uid]),
                ("cn", vec![uid]),
                ("sn", vec![uid]),
                ("mail", vec![mail]),
                ("userPassword", vec![password]),
            ],
        )
    };
    let group = |cn: &'static str, members: Vec<&'static str>| -> Entry<'static> {
        let dn: &'static str = Box::leak(format!("cn={cn},ou=groups,{SUFFIX}").into_boxed_str());
        let members = members
            .into_iter()
            .map(|uid| -> &'static str {
                Box::leak(format!("uid={uid},ou=people,{SUFFIX}").into_boxed_str())
            })
            .collect();
        (
            dn,
            vec![
                ("objectClass", vec!["groupOfNames"]),
                ("cn", vec![cn]),
                ("member", members),
            ],
        )
    };
    let unit = |ou: &'static str| -> Entry<'static> {
        let dn: &'static str = Box::leak(format!("ou={ou},{SUFFIX}").into_boxed_str());
        (
            dn,
            vec![
                ("objectClass", vec!["organizationalUnit"]),
                ("ou", vec![ou]),
            ],
        )
    };
    vec![
        (
            SUFFIX,
            vec![
                ("objectClass", vec!["dcObject", "organization"]),
                ("dc", vec!["example"]),
                ("o", vec!["Example"]),
            ],
        ),
        unit("people"),
        unit("groups"),
        unit("services"),
        (
            SEARCH_DN,
            vec![
                (
                    "objectClass",
                    vec!["organizationalRole", "simpleSecurityObject"],
                ),
                ("cn", vec!["ftw"]),
                ("userPassword", vec![SEARCH_PASSWORD]),
            ],
        ),
        person("alice", "alice-pw"),
        person("bob", "bob-pw"),
        person("eve", "eve-pw"),
        group("ops", vec!["alice"]),
        group("dev", vec!["bob", "alice"]),
    ]
}

impl Slapd {
    /// slapd with the directory above; `None` (after a visible SKIPPED line) when slapd
    /// is not installed.
    pub fn start() -> Option<Slapd> {
        let slapd = external::find("FTW_SLAPD", "/usr/sbin/slapd", "slapd");
        let schema = Path::new("/etc/ldap/schema/inetorgperson.schema").exists();
        if !external::available(
            "slapd",
            slapd.is_some() && schema,
            "sudo apt-get install slapd",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 moduleload memberof\n\
                 pidfile {dir}/slapd.pid\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"cn=admin,{SUFFIX}\"\n\
                 rootpw admin-secret\n\
                 directory {data}\n\
                 overlay memberof\n\
                 access to attrs=userPassword by self auth by anonymous auth by * none\n\
                 access to * by users read by * none\n",
                dir = dir.path().display(),
                data = data.display(),
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(slapd.unwrap())
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slapd");
        let server = Slapd {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server.load();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    fn load(&self) {
        let url = self.url();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let (conn, mut ld) = LdapConnAsync::new(&url).await.unwrap();
                ldap3::drive!(conn);
                ld.simple_bind(&format!("cn=admin,{SUFFIX}"), "admin-secret")
                    .await
                    .unwrap()
                    .success()
                    .unwrap();
                for (dn, attrs) in directory() {
                    let attrs = attrs
                        .into_iter()
                        .map(|(k, v)| (k, v.into_iter().collect()))
                        .collect();
                    ld.add(dn, attrs)
                        .await
                        .unwrap()
                        .success()
                        .unwrap_or_else(|e| panic!("{dn}: {e}"));
                }
                ld.unbind().await.unwrap();
            });
    }
}
